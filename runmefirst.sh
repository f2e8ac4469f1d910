#!/usr/bin/env bash
# runmefirst.sh: install the stonks-oracle pipeline on the gremlin cluster, or rebuild it after
# a cluster rebuild or a runmelast.sh (the same as `nix run .#bootstrap`).
#
# Idempotent: a second run finds everything in place, changes nothing and says so.
# The runbook (docs/runbook.md) lists what to prepare before the first run.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=gitops/bootstrap/lib.sh
. "${PIPELINES_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}/gitops/bootstrap/lib.sh"

usage() {
  cat <<EOF
Usage: $PROG [--yes] [--dry-run] [--context NAME] [--secrets-dir DIR] [--timeout SECONDS]

Installs the pipeline: namespaces, NFS volumes and claims, secrets, Argo CD (Helm), the root
Application; waits for the child Applications; restores the state the last teardown exported.

  --yes              do not ask to confirm the kube context (required without a terminal)
  --dry-run          print every change in order, change nothing
  --context NAME     kube context to install into (default: the current context)
  --secrets-dir DIR  read secret inputs from files in DIR (names below)
  --timeout SECONDS  bound for each wait (default $TIMEOUT)
  -h, --help         this help

Secrets are only created when missing, from environment variables or --secrets-dir files
(the variable wins); values go to the cluster through stdin and are never printed:
  arc-runners/github-app             GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID (or files
                                     github-app-id, github-app-installation-id) and
                                     GITHUB_APP_PRIVATE_KEY_FILE (or github-app-private-key.pem)
  argocd/repo-creds-github,          GIT_USERNAME, GIT_TOKEN (or git-username, git-token)
  kargo-stonks-oracle/git-creds,
  pipeline-console/git-creds
  kargo/kargo-api                    KARGO_ADMIN_PASSWORD (or kargo-admin-password), bcrypt-hashed;
                                     the token signing key is generated
  pipeline-console/pipeline-console-htpasswd
                                     CONSOLE_HTPASSWD_FILE (or console-htpasswd, bcrypt lines), or
                                     CONSOLE_ADMIN_PASSWORD (or console-admin-password) for user
                                     \${CONSOLE_ADMIN_USER:-admin}
  pipeline-console/pipeline-console-tokens
                                     PIPELINE_KARGO_TOKEN, PIPELINE_CI_TOKEN (or console-kargo-token,
                                     console-ci-token); generated when absent
  kargo-stonks-oracle/pipeline-gate-token
                                     copied from pipeline-console-tokens' kargo-token

Environment: PIPELINES_ROOT (the repository; default: this script's directory),
STATE_IO_IMAGE (image of the pod that reads the state volume; default $STATE_IO_IMAGE).
Exit status: 0 done, 1 failed, 2 bad usage or preflight refused (nothing changed).
EOF
}

SECRETS_DIR=""
while (($#)); do
  case $1 in
    -y | --yes) ASSUME_YES=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --context | --secrets-dir | --timeout)
      [[ $# -ge 2 && -n $2 ]] || die 2 "$1 needs a value (see --help)"
      case $1 in
        --context) CONTEXT=$2 ;;
        --secrets-dir) SECRETS_DIR=$2 ;;
        --timeout) TIMEOUT=$2 ;;
      esac
      shift
      ;;
    --context=*) CONTEXT=${1#*=} ;;
    --secrets-dir=*) SECRETS_DIR=${1#*=} ;;
    --timeout=*) TIMEOUT=${1#*=} ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die 2 "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die 2 "--timeout takes a positive number of seconds"
[[ -z $SECRETS_DIR || -d $SECRETS_DIR ]] || die 2 "--secrets-dir $SECRETS_DIR is not a directory"
trap cleanup EXIT
STEPS=9

# ---- secret inputs ------------------------------------------------------------------------------

# input ENV FILE: a secret input's value from $ENV, else from --secrets-dir/FILE (else empty).
input() {
  local v
  if [[ -n ${!1:-} ]]; then
    printf '%s' "${!1}"
  elif [[ -n $SECRETS_DIR && -r $SECRETS_DIR/$2 ]]; then
    v=$(<"$SECRETS_DIR/$2")
    printf '%s' "$v"
  fi
}
# input_file ENV FILE: a file input's path from $ENV, else --secrets-dir/FILE if present.
input_file() {
  if [[ -n ${!1:-} ]]; then
    printf '%s' "${!1}"
  elif [[ -n $SECRETS_DIR && -e $SECRETS_DIR/$2 ]]; then
    printf '%s' "$SECRETS_DIR/$2"
  fi
}

b64() { printf '%s' "$1" | base64 -w0; }
rand_token() { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }
bcrypt_hash() { # password on stdin, bcrypt hash on stdout
  python3 -c 'import sys, bcrypt
sys.stdout.write(bcrypt.hashpw(sys.stdin.buffer.read(), bcrypt.gensalt(rounds=10)).decode())'
}

# secret_manifest NAMESPACE NAME LABELS KEY B64VALUE...: a Secret (LABELS: "k=v,k=v" or "").
secret_manifest() {
  local ns=$1 name=$2 labels=$3 l
  shift 3
  printf 'apiVersion: v1\nkind: Secret\ntype: Opaque\nmetadata:\n  name: %s\n  namespace: %s\n' \
    "$name" "$ns"
  printf '  labels:\n    app.kubernetes.io/part-of: pipelines\n'
  local -a extra=()
  [[ -z $labels ]] || IFS=, read -ra extra <<<"$labels"
  for l in "${extra[@]}"; do
    printf '    %s: "%s"\n' "${l%%=*}" "${l#*=}"
  done
  printf 'data:\n'
  while (($# >= 2)); do
    printf '  %s: %s\n' "$1" "$2"
    shift 2
  done
}

secret_b64() { # secret_b64 NAMESPACE NAME KEY: a key's base64 value from the cluster
  k get secret "$2" -n "$1" -o jsonpath="{.data.$3}" --ignore-not-found
}

git_user_b64() { b64 "$(input GIT_USERNAME git-username)"; }
git_token_b64() { b64 "$(input GIT_TOKEN git-token)"; }

produce_repo_creds() {
  secret_manifest "$ARGOCD_NS" repo-creds-github "argocd.argoproj.io/secret-type=repo-creds" \
    type "$(b64 git)" url "$(b64 "$REPO_OWNER_URL")" \
    username "$(git_user_b64)" password "$(git_token_b64)"
}
produce_kargo_api() {
  local hash
  hash=$(input KARGO_ADMIN_PASSWORD kargo-admin-password | bcrypt_hash)
  secret_manifest "$KARGO_NS" kargo-api "" \
    ADMIN_ACCOUNT_PASSWORD_HASH "$(b64 "$hash")" \
    ADMIN_ACCOUNT_TOKEN_SIGNING_KEY "$(b64 "$(rand_token)")"
}
produce_github_app() {
  local key
  key=$(input_file GITHUB_APP_PRIVATE_KEY_FILE github-app-private-key.pem)
  secret_manifest "$ARC_RUNNERS_NS" github-app "" \
    github_app_id "$(b64 "$(input GITHUB_APP_ID github-app-id)")" \
    github_app_installation_id "$(b64 "$(input GITHUB_APP_INSTALLATION_ID github-app-installation-id)")" \
    github_app_private_key "$(base64 -w0 <"$key")"
}
produce_console_tokens() {
  local kargo ci
  kargo=$(input PIPELINE_KARGO_TOKEN console-kargo-token)
  if [[ -n $kargo ]]; then
    kargo=$(b64 "$kargo")
  else # keep the gate token Kargo already holds, if any, so the two stay equal
    kargo=$(secret_b64 "$KARGO_PROJECT" pipeline-gate-token token)
    [[ -n $kargo ]] || kargo=$(b64 "$(rand_token)")
  fi
  ci=$(input PIPELINE_CI_TOKEN console-ci-token)
  [[ -n $ci ]] || ci=$(rand_token)
  secret_manifest "$CONSOLE_NS" pipeline-console-tokens "" kargo-token "$kargo" ci-token "$(b64 "$ci")"
}
produce_htpasswd() {
  local file content
  file=$(input_file CONSOLE_HTPASSWD_FILE console-htpasswd)
  if [[ -n $file ]]; then
    content=$(base64 -w0 <"$file")
  else
    content=$(b64 "${CONSOLE_ADMIN_USER:-admin}:$(input CONSOLE_ADMIN_PASSWORD console-admin-password |
      bcrypt_hash)"$'\n')
  fi
  secret_manifest "$CONSOLE_NS" pipeline-console-htpasswd "" htpasswd "$content"
}
produce_console_git_creds() {
  secret_manifest "$CONSOLE_NS" git-creds "" username "$(git_user_b64)" password "$(git_token_b64)"
}
produce_kargo_git_creds() {
  secret_manifest "$KARGO_PROJECT" git-creds "kargo.akuity.io/cred-type=git" \
    repoURL "$(b64 "$REPO_URL")" username "$(git_user_b64)" password "$(git_token_b64)"
}
produce_gate_token() {
  local tok
  tok=$(secret_b64 "$CONSOLE_NS" pipeline-console-tokens kargo-token)
  [[ -n $tok ]] || die "$CONSOLE_NS/pipeline-console-tokens has no kargo-token to copy"
  secret_manifest "$KARGO_PROJECT" pipeline-gate-token "" token "$tok"
}

# In creation order: the gate token copies the console's kargo-token.
SECRETS=(
  "$ARGOCD_NS/repo-creds-github|produce_repo_creds|from GIT_USERNAME/GIT_TOKEN"
  "$KARGO_NS/kargo-api|produce_kargo_api|admin hash from KARGO_ADMIN_PASSWORD, generated signing key"
  "$ARC_RUNNERS_NS/github-app|produce_github_app|from the GitHub App id, installation id, key"
  "$CONSOLE_NS/pipeline-console-tokens|produce_console_tokens|kargo-token, ci-token"
  "$CONSOLE_NS/pipeline-console-htpasswd|produce_htpasswd|console users (bcrypt)"
  "$CONSOLE_NS/git-creds|produce_console_git_creds|from GIT_USERNAME/GIT_TOKEN"
  "$KARGO_PROJECT/git-creds|produce_kargo_git_creds|Kargo push creds, from GIT_USERNAME/GIT_TOKEN"
  "$KARGO_PROJECT/pipeline-gate-token|produce_gate_token|copy of the console's kargo-token"
)
MISSING_SECRETS=()
declare -A MISSING=()
PROBLEMS=()

check_password() { # check_password ENV FILE WHAT
  local v
  v=$(input "$1" "$2")
  if [[ -z $v ]]; then
    PROBLEMS+=("$3: set $1 or write <secrets-dir>/$2")
  elif ((${#v} < 12)); then
    PROBLEMS+=("$3 ($1 / $2) is shorter than 12 characters")
  fi
}
need_bcrypt() {
  python3 -c 'import bcrypt' >/dev/null 2>&1 ||
    PROBLEMS+=("python3 with the bcrypt module is needed to hash passwords (nix run .#bootstrap has it)")
}

check_inputs() { # for every missing secret, are its inputs there and well-formed?
  local entry ns_name git_checked=0 v f
  for entry in "${MISSING_SECRETS[@]}"; do
    ns_name=${entry%%|*}
    case $ns_name in
      */repo-creds-github | */git-creds)
        ((git_checked)) && continue
        git_checked=1
        [[ -n $(input GIT_USERNAME git-username) ]] ||
          PROBLEMS+=("Git user for $REPO_URL: set GIT_USERNAME or write <secrets-dir>/git-username")
        [[ -n $(input GIT_TOKEN git-token) ]] ||
          PROBLEMS+=("Git token that can push to $REPO_URL: set GIT_TOKEN or write <secrets-dir>/git-token")
        ;;
      */kargo-api)
        check_password KARGO_ADMIN_PASSWORD kargo-admin-password "Kargo admin password"
        need_bcrypt
        ;;
      */github-app)
        v=$(input GITHUB_APP_ID github-app-id)
        [[ $v =~ ^[0-9]+$ ]] ||
          PROBLEMS+=("GitHub App id (a number): set GITHUB_APP_ID or write <secrets-dir>/github-app-id")
        v=$(input GITHUB_APP_INSTALLATION_ID github-app-installation-id)
        [[ $v =~ ^[0-9]+$ ]] ||
          PROBLEMS+=("GitHub App installation id (a number): set GITHUB_APP_INSTALLATION_ID or write <secrets-dir>/github-app-installation-id")
        f=$(input_file GITHUB_APP_PRIVATE_KEY_FILE github-app-private-key.pem)
        if [[ -z $f || ! -r $f ]]; then
          PROBLEMS+=("GitHub App private key: set GITHUB_APP_PRIVATE_KEY_FILE to the .pem or write <secrets-dir>/github-app-private-key.pem")
        elif ! grep -q -- '-----BEGIN .*PRIVATE KEY-----' "$f"; then
          PROBLEMS+=("GitHub App private key $f is not a PEM private key")
        fi
        ;;
      */pipeline-console-tokens)
        for v in PIPELINE_KARGO_TOKEN:console-kargo-token PIPELINE_CI_TOKEN:console-ci-token; do
          f=$(input "${v%%:*}" "${v#*:}")
          [[ -z $f || ${#f} -ge 16 ]] || PROBLEMS+=("${v%%:*} / ${v#*:} is shorter than 16 characters")
        done
        ;;
      */pipeline-console-htpasswd)
        f=$(input_file CONSOLE_HTPASSWD_FILE console-htpasswd)
        if [[ -n $f ]]; then
          [[ -r $f ]] && grep -qE '^[^:#[:space:]]+:[$]2[aby][$]' "$f" ||
            PROBLEMS+=("console htpasswd $f has no bcrypt entry (create it with htpasswd -B)")
        else
          check_password CONSOLE_ADMIN_PASSWORD console-admin-password "Pipeline console password (or CONSOLE_HTPASSWD_FILE)"
          need_bcrypt
        fi
        ;;
    esac
  done
}

# ---- steps ---------------------------------------------------------------------------------------

preflight() {
  step "preflight: tools, kube context, cluster, inputs"
  require_tools kubectl helm curl python3 base64 sha256sum od tar diff # kubectl diff runs diff
  require_files "$PIPELINE_YAML" "$VERSIONS_FILE" "$NAMESPACES_FILE" "$STORAGE_FILE" \
    "$ARGOCD_VALUES" "$ROOT_APP_FILE"
  ARGOCD_CHART_VERSION=$(env_value "$VERSIONS_FILE" ARGOCD_CHART_VERSION)
  REPO_URL=$(sed -n '/^repository:/,/^[^[:space:]#]/{s/^[[:space:]]\{1,\}url:[[:space:]]*//p;}' \
    "$PIPELINE_YAML" | head -n 1 | tr -d "\"'")
  [[ $REPO_URL == https://* ]] || die 2 "repository.url in pipeline.yaml is not an https:// URL"
  REPO_OWNER_URL=${REPO_URL%/*}
  ROOT_APP=$(manifest_name "$ROOT_APP_FILE")
  [[ -n $ROOT_APP ]] || die 2 "no metadata.name in $(rel "$ROOT_APP_FILE")"
  resolve_context
  check_reachable
  local entry ns_name
  for entry in "${SECRETS[@]}"; do
    ns_name=${entry%%|*}
    exists secret "${ns_name#*/}" "${ns_name%%/*}" && continue
    MISSING_SECRETS+=("$entry")
    MISSING["$ns_name"]=1
  done
  check_inputs
  if ((${#PROBLEMS[@]})); then
    printf '%s: error: missing or invalid secret inputs (nothing was changed):\n' "$PROG" >&2
    printf '  - %s\n' "${PROBLEMS[@]}" >&2
    exit 2
  fi
  info "secrets to create: ${#MISSING_SECRETS[@]} of ${#SECRETS[@]}"
  confirm "Install the pipeline"
}

kargo_ns_manifest() {
  cat <<EOF
# Created before Kargo exists so its secrets can; the label lets Kargo's Project adopt it.
apiVersion: v1
kind: Namespace
metadata:
  name: $KARGO_PROJECT
  labels:
    app.kubernetes.io/part-of: pipelines
    kargo.akuity.io/project: "true"
EOF
}

namespaces() {
  step "namespaces"
  apply_file "$NAMESPACES_FILE"
  if in_sync - < <(kargo_ns_manifest); then
    info "namespace $KARGO_PROJECT: up to date"
  else
    act_from "apply namespace $KARGO_PROJECT (labelled for adoption by the Kargo Project)" \
      kargo_ns_manifest -- k apply -f -
  fi
}

volumes() {
  step "NFS volumes and claims"
  local lines name phase claim ns
  lines=$(storage_pvs \
    '{.metadata.name}{"\t"}{.status.phase}{"\t"}{.spec.claimRef.namespace}/{.spec.claimRef.name}{"\n"}') ||
    die "cannot read the PersistentVolumes of $(rel "$STORAGE_FILE") (kubectl get -f failed)"
  while IFS=$'\t' read -r name phase claim; do
    [[ -n $name ]] || continue
    case $phase in
      Released)
        # Drop only the gone claim's uid: the PV turns Available but stays reserved for a
        # claim of the same namespace/name (ours, bound by volumeName), so no stray claim
        # can take the NFS data in between.
        act "make Released PV $name bindable again, reserved for $claim" \
          k patch pv "$name" --type merge -p '{"spec":{"claimRef":{"uid":null,"resourceVersion":null}}}'
        ;;
      Failed) warn "PV $name is Failed; look at it: kubectl describe pv $name" ;;
    esac
  done <<<"$lines"
  apply_file "$STORAGE_FILE"
  ((DRY_RUN)) && return 0
  lines=$(k get -f "$STORAGE_FILE" -o \
    jsonpath='{range .items[?(@.kind=="PersistentVolumeClaim")]}{.metadata.namespace}{"\t"}{.metadata.name}{"\n"}{end}')
  while IFS=$'\t' read -r ns name; do
    [[ -n $name ]] || continue
    k wait --for=jsonpath='{.status.phase}'=Bound "pvc/$name" -n "$ns" --timeout="${TIMEOUT}s" \
      >/dev/null || die "claim $ns/$name is not Bound after ${TIMEOUT}s: kubectl -n $ns describe pvc $name"
  done <<<"$lines"
  info "all claims Bound"
}

secrets() {
  step "secrets (created when missing; values never printed)"
  local entry ns_name producer what
  for entry in "${SECRETS[@]}"; do
    ns_name=${entry%%|*}
    if [[ -z ${MISSING[$ns_name]:-} ]]; then
      info "Secret $ns_name: exists, kept"
      continue
    fi
    producer=${entry#*|}
    what=${producer#*|}
    producer=${producer%%|*}
    act_from "create Secret $ns_name ($what)" "$producer" -- k create -f -
  done
  if ! ((DRY_RUN)); then
    local a b
    a=$(secret_b64 "$CONSOLE_NS" pipeline-console-tokens kargo-token)
    b=$(secret_b64 "$KARGO_PROJECT" pipeline-gate-token token)
    [[ $a == "$b" ]] || warn "$KARGO_PROJECT/pipeline-gate-token differs from" \
      "$CONSOLE_NS/pipeline-console-tokens kargo-token: Kargo's gate calls will be refused." \
      "Delete both and run again to re-create them equal."
  fi
}

install_argocd() {
  step "Argo CD (Helm chart argo-cd $ARGOCD_CHART_VERSION)"
  local sum desc hist current="" chart="" status="" description=""
  sum=$(sha256sum <"$ARGOCD_VALUES" | cut -d' ' -f1)
  desc="pipelines bootstrap, values sha256 $sum"
  if hist=$(h history "$ARGOCD_RELEASE" -n "$ARGOCD_NS" --max 1 -o json 2>/dev/null); then
    current=$(printf '%s' "$hist" | python3 -c 'import json, sys
r = json.load(sys.stdin)[-1]
print(r.get("chart", ""), r.get("status", ""), r.get("description", ""), sep="|")')
    IFS='|' read -r chart status description <<<"$current"
  fi
  if [[ $chart == "argo-cd-$ARGOCD_CHART_VERSION" && $status == deployed && $description == "$desc" ]]; then
    info "release $ARGOCD_RELEASE: $chart deployed with these values"
    return 0
  fi
  act "helm upgrade --install $ARGOCD_RELEASE $ARGOCD_CHART_REF --version $ARGOCD_CHART_VERSION (now: ${chart:-not installed}${status:+ $status})" \
    h upgrade --install "$ARGOCD_RELEASE" "$ARGOCD_CHART_REF" --version "$ARGOCD_CHART_VERSION" \
    -n "$ARGOCD_NS" -f "$ARGOCD_VALUES" --description "$desc" --timeout "${TIMEOUT}s"
}

argocd_rollout() {
  step "wait for Argo CD to roll out"
  if ((DRY_RUN)); then
    info "would wait for every Deployment and StatefulSet in $ARGOCD_NS (kubectl rollout status)"
    return 0
  fi
  local r list
  list=$(k get deployments,statefulsets -n "$ARGOCD_NS" -o name)
  [[ -n $list ]] || die "no Argo CD workloads in namespace $ARGOCD_NS after the Helm install"
  while read -r r; do
    k rollout status "$r" -n "$ARGOCD_NS" --timeout="${TIMEOUT}s" >/dev/null ||
      die "$r in $ARGOCD_NS did not roll out within ${TIMEOUT}s: kubectl -n $ARGOCD_NS describe $r"
    info "$r rolled out"
  done <<<"$list"
}

root_app() {
  step "root Application $ROOT_APP; wait for its Applications to be Synced/Healthy"
  apply_file "$ROOT_APP_FILE"
  if ((DRY_RUN)); then
    info "would wait up to ${TIMEOUT}s for every pipeline Application to be Synced and Healthy"
    return 0
  fi
  local deadline=$((SECONDS + TIMEOUT)) table children name sync health c
  local -a pending app_state
  while :; do
    pending=()
    app_state=()
    table=$(k get applications.argoproj.io -n "$ARGOCD_NS" -o \
      jsonpath='{range .items[*]}{.metadata.name}{"\t"}{.status.sync.status}{"\t"}{.status.health.status}{"\n"}{end}')
    children=$(k get applications.argoproj.io "$ROOT_APP" -n "$ARGOCD_NS" -o \
      jsonpath='{range .status.resources[?(@.kind=="Application")]}{.name}{"\n"}{end}')
    while IFS=$'\t' read -r name sync health; do
      [[ -n $name ]] || continue
      if [[ $name =~ $APP_NAMESPACE_RE ]]; then # the app's own stages: reported, not waited for
        app_state+=("$name ${sync:-Unknown}/${health:-Unknown}")
      elif [[ $name == "$ROOT_APP" ]]; then # its health aggregates the stages': Synced is enough
        [[ $sync == Synced ]] || pending+=("$name (${sync:-Unknown}/${health:-Unknown})")
      elif [[ $sync != Synced || $health != Healthy ]]; then
        pending+=("$name (${sync:-Unknown}/${health:-Unknown})")
      fi
    done <<<"$table"
    [[ -n $children ]] || pending+=("$ROOT_APP has not created its Applications yet")
    while read -r c; do
      [[ -n $c && ! $c =~ $APP_NAMESPACE_RE ]] || continue
      grep -q "^$c"$'\t' <<<"$table" || pending+=("$c (not created yet)")
    done <<<"$children"
    ((${#pending[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      die "after ${TIMEOUT}s these Applications are not Synced/Healthy: ${pending[*]}" \
        "(argocd app get <name>, or the Argo CD UI, says why)"
    fi
    sleep "$POLL_SECONDS"
  done
  info "all pipeline Applications Synced/Healthy"
  ((${#app_state[@]} == 0)) || info "stonks-oracle stage Applications: ${app_state[*]}"
}

# Freight from the newest export, minus what exists; aliases taken since are dropped (Kargo
# names a new one). Spec only: status (approvals, verifications) is Kargo's to rebuild.
FREIGHT_RESTORE_PY='
import json, sys
src, have, dst, ts, ns = sys.argv[1:6]
names, aliases = set(), set()
with open(have) as fh:
    for line in fh:
        name, _, alias = line.rstrip("\n").partition("\t")
        names.add(name)
        aliases.add(alias)
items = []
with open(src) as fh:
    exported = json.load(fh).get("items", [])
for f in exported:
    md = f.get("metadata", {})
    if md.get("name") in names:
        continue
    out = {k: v for k, v in f.items() if k not in ("metadata", "status")}
    labels = dict(md.get("labels") or {})
    if out.get("alias") in aliases:
        out.pop("alias")
        labels.pop("kargo.akuity.io/alias", None)
    aliases.add(out.get("alias"))
    meta = {"name": md["name"], "namespace": ns,
            "annotations": {"pipelines.celestium.life/restored-from": ts}}
    if labels:
        meta["labels"] = labels
    out["metadata"] = meta
    items.append(out)
with open(dst, "w") as fh:
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, fh)
print(len(items))
'

restore() {
  step "restore the state the last teardown exported"
  local pv last restored list ts tmp n
  pv=$(pvc_volume "$KARGO_NS")
  if [[ -z $pv ]]; then
    if ((DRY_RUN)); then
      info "would look for exports on $KARGO_NS/$STATE_PVC once it is bound"
    else
      warn "$KARGO_NS/$STATE_PVC is not bound; nothing restored"
    fi
    return 0
  fi
  last=$(pv_annotation "$pv" "$ANN_LAST_EXPORT")
  restored=$(pv_annotation "$pv" "$ANN_RESTORED")
  if [[ -n $restored && (-z $last || $last == "$restored") ]]; then
    info "nothing to restore (PV $pv: last export ${last:-none}, restored ${restored})"
    return 0
  fi
  if ((DRY_RUN)); then
    act "read exports/ on PV $pv (last export: ${last:-unknown}) and re-create its Freight in $KARGO_PROJECT" true
    return 0
  fi
  if ! crd_exists freights.kargo.akuity.io || ! ns_exists "$KARGO_PROJECT"; then
    warn "Kargo or its project $KARGO_PROJECT is not up; nothing restored (the next run retries)"
    return 0
  fi
  state_pod_start "$KARGO_NS"
  # shellcheck disable=SC2016  # $1, $2 expand in the pod's shell
  list=$(state_exec "$KARGO_NS" -- sh -c 'ls -1 "$1/exports" 2>/dev/null || true' sh "$STATE_MOUNT")
  ts=""
  if [[ -n $last ]] && grep -qxF -- "$last" <<<"$list"; then
    ts=$last
  else
    ts=$(grep -E "$EXPORT_TS_RE" <<<"$list" | sort | tail -n 1) || true
  fi
  if [[ -z $ts ]]; then
    info "no export on PV $pv"
    act "mark PV $pv: nothing to restore" \
      k annotate pv "$pv" "$ANN_RESTORED=none" --overwrite
    state_pod_stop "$KARGO_NS"
    return 0
  fi
  # shellcheck disable=SC2016  # $1, $2 expand in the pod's shell
  if ! state_exec "$KARGO_NS" -- sh -c 'cd "$1/exports/$2" && sha256sum -c SHA256SUMS' \
    sh "$STATE_MOUNT" "$ts" >/dev/null; then
    warn "export $ts on PV $pv fails its SHA256SUMS; not restored (the next run retries)"
    state_pod_stop "$KARGO_NS"
    return 0
  fi
  make_tmp_dir tmp
  # shellcheck disable=SC2016  # $1, $2 expand in the pod's shell
  state_exec "$KARGO_NS" -- sh -c 'cat "$1/exports/$2/freights.json"' sh "$STATE_MOUNT" "$ts" \
    >"$tmp/freights.json"
  k get freights.kargo.akuity.io -n "$KARGO_PROJECT" -o \
    jsonpath='{range .items[*]}{.metadata.name}{"\t"}{.alias}{"\n"}{end}' >"$tmp/existing.tsv"
  n=$(python3 -c "$FREIGHT_RESTORE_PY" "$tmp/freights.json" "$tmp/existing.tsv" \
    "$tmp/restore.json" "$ts" "$KARGO_PROJECT")
  if ((n > 0)); then
    act "re-create $n Freight from export $ts in $KARGO_PROJECT" \
      k create -f "$tmp/restore.json" ||
      warn "Kargo refused some Freight of export $ts (messages above); the rest is restored"
  else
    info "export $ts: every Freight in it exists already"
  fi
  act "mark PV $pv: export $ts restored" \
    k annotate pv "$pv" "$ANN_RESTORED=$ts" --overwrite
  state_pod_stop "$KARGO_NS"
}

reachability() {
  step "reachability"
  local host out rc why
  for host in "${PUBLIC_HOSTS[@]}"; do
    if ((DRY_RUN)); then
      info "would check https://$host"
      continue
    fi
    # -k: the certificate comes from cert-manager's self-signed ca-issuer. On no HTTP answer
    # curl still writes "HTTP 000" and exits non-zero; its exit code says why.
    rc=0
    out=$(curl -sk --max-time 10 -o /dev/null -w 'HTTP %{http_code}\n' "https://$host") || rc=$?
    if ((rc != 0)); then
      case $rc in
        6) why="its name does not resolve (DNS)" ;;
        7) why="the connection was refused" ;;
        28) why="no answer within 10s" ;;
        35) why="the TLS handshake failed" ;;
        *) why="curl exit $rc" ;;
      esac
      info "https://$host: no HTTP answer"
      warn "https://$host gave no HTTP answer: $why; check DNS, Traefik and its Ingress"
      continue
    fi
    info "https://$host: $out"
    case $out in
      "HTTP 2"* | "HTTP 3"* | "HTTP 401" | "HTTP 403") ;;
      *) warn "https://$host answered $out; check its Ingress, Service and the app behind it" ;;
    esac
  done
}

preflight
namespaces
volumes
secrets
install_argocd
argocd_rollout
root_app
restore
reachability
finish
