# shellcheck shell=bash
# shellcheck disable=SC2034  # names defined here are used by the scripts that source this file
#
# Shared by runmefirst.sh (bootstrap) and runmelast.sh (teardown): the cluster names of
# docs/design.md, output helpers, guarded kubectl/helm calls and the state-volume helpers.
# Sourced, never executed.
#
# The repository is found through PIPELINES_ROOT (the flake's app wrapper sets it to the copy
# in the Nix store) or else relative to this file, so both scripts run from any directory.

PIPELINES_ROOT="${PIPELINES_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PROG="${PROG:-$(basename "$0")}"

# ---- files (docs/design.md "GitOps paths the scripts rely on") ----------------------------
PIPELINE_YAML="$PIPELINES_ROOT/pipeline.yaml"
VERSIONS_FILE="$PIPELINES_ROOT/gitops/versions.env"
NAMESPACES_FILE="$PIPELINES_ROOT/gitops/bootstrap/namespaces.yaml"
STORAGE_FILE="$PIPELINES_ROOT/gitops/bootstrap/storage.yaml"
ARGOCD_VALUES="$PIPELINES_ROOT/gitops/argocd/values.yaml"
ROOT_APP_FILE="$PIPELINES_ROOT/gitops/root.yaml"

# ---- cluster names (docs/design.md "Cluster names") ---------------------------------------
ARGOCD_NS=argocd
ARGOCD_RELEASE=argocd
ARGOCD_CHART_REF="${ARGOCD_CHART_REF:-oci://ghcr.io/argoproj/argo-helm/argo-cd}"
KARGO_NS=kargo
KARGO_PROJECT=kargo-stonks-oracle
ARC_SYSTEMS_NS=arc-systems
ARC_RUNNERS_NS=arc-runners
CONSOLE_NS=pipeline-console
# The namespaces runmefirst.sh creates from namespaces.yaml (tests check the two agree).
PIPELINE_NAMESPACES=("$ARGOCD_NS" "$KARGO_NS" "$ARC_SYSTEMS_NS" "$ARC_RUNNERS_NS" "$CONSOLE_NS")
# The application's namespaces: the pipeline never deletes anything in them.
APP_NAMESPACE_RE='^stonks-oracle'
PUBLIC_HOSTS=(argocd.celestium.life kargo.celestium.life pipeline.celestium.life)
ARGO_FINALIZER=resources-finalizer.argocd.argoproj.io

# ---- the state volumes (PVC pipeline-state in argocd and kargo) ----------------------------
STATE_PVC=pipeline-state
STATE_IO_POD=pipeline-state-io
STATE_IO_IMAGE="${STATE_IO_IMAGE:-docker.io/library/busybox:1.37.0}"
STATE_MOUNT=/state
ANN_LAST_EXPORT=pipelines.celestium.life/last-export
ANN_RESTORED=pipelines.celestium.life/restored-export
EXPORT_TS_RE='^[0-9]{8}T[0-9]{6}Z$'

# ---- run state ------------------------------------------------------------------------------
CONTEXT="${CONTEXT:-}"
DRY_RUN=0
ASSUME_YES=0
TIMEOUT=600
POLL_SECONDS="${PIPELINES_POLL_SECONDS:-5}"
STEP=0
STEPS=0
CHANGES=0
WARNINGS=0
STARTED_PODS=()
TMP_DIRS=()

# ---- output -----------------------------------------------------------------------------------
step() {
  STEP=$((STEP + 1))
  printf '==> [%d/%d] %s\n' "$STEP" "$STEPS" "$*"
}
info() { printf '    %s\n' "$*"; }
warn() {
  WARNINGS=$((WARNINGS + 1))
  printf '%s: warning: %s\n' "$PROG" "$*" >&2
}
# die [CODE] MESSAGE: 2 = usage/preflight (nothing was changed), 1 = the run failed.
die() {
  local code=1
  if [[ $1 =~ ^[0-9]+$ ]]; then
    code=$1
    shift
  fi
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit "$code"
}
indent() { sed 's/^/      /'; }
rel() { printf '%s\n' "${1#"$PIPELINES_ROOT"/}"; }

# ---- kubectl / helm ----------------------------------------------------------------------------
k() { kubectl --context "$CONTEXT" "$@"; }
h() { helm --kube-context "$CONTEXT" "$@"; }

# act DESCRIPTION COMMAND...: one change to the cluster. --dry-run only prints it.
act() {
  local what=$1
  shift
  CHANGES=$((CHANGES + 1))
  if ((DRY_RUN)); then
    info "would $what"
    return 0
  fi
  info "$what"
  "$@" | indent
}

# act_from DESCRIPTION PRODUCER [ARGS...] -- COMMAND...: like act, with PRODUCER's output as
# COMMAND's stdin (manifests with secret values travel this way, never as arguments).
act_from() {
  local what=$1
  shift
  local -a producer=()
  while [[ $# -gt 0 && $1 != "--" ]]; do
    producer+=("$1")
    shift
  done
  shift
  CHANGES=$((CHANGES + 1))
  if ((DRY_RUN)); then
    info "would $what"
    return 0
  fi
  info "$what"
  "${producer[@]}" | "$@" | indent
}

# in_sync FILE|-: the cluster already matches the manifest. kubectl diff exits 0 (same),
# 1 (differs) or >1 (kubectl or diff failed, e.g. a namespace not created yet, or no `diff`
# on PATH): then the manifest is applied, and why is said rather than hidden.
in_sync() {
  local err rc=0
  err=$(k diff -f "$1" 2>&1 >/dev/null) || rc=$?
  ((rc != 0)) || return 0
  ((rc == 1)) || info "kubectl diff could not compare $(rel "$1") (${err%%$'\n'*}): applying"
  return 1
}

# apply_file FILE: kubectl apply, only when kubectl diff shows a difference.
apply_file() {
  if in_sync "$1"; then
    info "$(rel "$1"): up to date"
  else
    act "apply $(rel "$1")" k apply -f "$1"
  fi
}

exists() { # exists TYPE NAME [NAMESPACE]: read errors are fatal, NotFound is false
  local out
  out=$(k get "$1" "$2" ${3:+-n "$3"} -o name --ignore-not-found) ||
    die "kubectl get $1 $2${3:+ -n $3} failed"
  [[ -n $out ]]
}
crd_exists() { exists crd "$1"; }
ns_exists() { exists namespace "$1"; }

# wait_gone TYPE NAME [NAMESPACE]: bounded wait for a deletion to finish.
wait_gone() {
  ((DRY_RUN)) && return 0
  k wait --for=delete "$1/$2" ${3:+-n "$3"} --timeout="${TIMEOUT}s" >/dev/null 2>&1
}

# ---- preflight ---------------------------------------------------------------------------------
require_tools() {
  local t missing=()
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  ((${#missing[@]} == 0)) ||
    die 2 "missing tools: ${missing[*]} (\`nix run .#bootstrap\` / \`.#teardown\` bring them)"
}

require_files() {
  local f
  for f in "$@"; do
    [[ -r $f ]] || die 2 "missing $(rel "$f") under $PIPELINES_ROOT (set PIPELINES_ROOT?)"
  done
}

resolve_context() {
  if [[ -z $CONTEXT ]]; then
    CONTEXT=$(kubectl config current-context 2>/dev/null) || true
  fi
  [[ -n $CONTEXT ]] || die 2 "no kube context: pass --context NAME"
  # Not `kubectl ... | grep -q`: grep leaves at the first match, kubectl dies of SIGPIPE
  # writing the next name, and pipefail turns a found context into "not found".
  local contexts
  contexts=$(kubectl config get-contexts -o name 2>/dev/null) || true
  grep -qxF -- "$CONTEXT" <<<"$contexts" ||
    die 2 "kube context '$CONTEXT' is not in your kubeconfig"
}

check_reachable() {
  k get --raw /readyz >/dev/null 2>&1 ||
    die 1 "the cluster of kube context '$CONTEXT' is not reachable (kubectl get --raw /readyz)"
  info "kube context '$CONTEXT': cluster reachable"
}

# confirm ACTION: the operator names the context, or passed --yes. No terminal and no --yes
# is a refusal (exit 2), never a silent yes.
confirm() {
  if ((DRY_RUN)); then
    info "dry run: nothing will be changed on context '$CONTEXT'"
    return 0
  fi
  if ((ASSUME_YES)); then
    info "context '$CONTEXT' confirmed by --yes"
    return 0
  fi
  [[ -t 0 ]] ||
    die 2 "refusing to $1 on kube context '$CONTEXT' unconfirmed: no terminal to ask on; pass --yes"
  local answer=""
  printf '%s on kube context "%s"? Type the context name to go on: ' "$1" "$CONTEXT" >&2
  read -r answer || true
  [[ $answer == "$CONTEXT" ]] || die 2 "not confirmed; nothing was changed"
}

# env_value FILE KEY: KEY=VALUE from a shell-style env file (read, never sourced).
env_value() {
  local line
  line=$(grep -E "^$2=" "$1" | tail -n 1) || true
  [[ -n $line ]] || die 2 "$2 is not set in $(rel "$1")"
  printf '%s\n' "${line#*=}"
}

# manifest_name FILE: metadata.name of the first object in a YAML file.
manifest_name() {
  sed -n '/^metadata:/,/^[^[:space:]]/{s/^  name:[[:space:]]*//p;}' "$1" | head -n 1 | tr -d "\"'"
}

# ---- state volumes -------------------------------------------------------------------------------
# A short-lived busybox pod mounts the namespace's pipeline-state claim; files go in and out
# through `kubectl exec` with tar/cat. Paths inside the pod are passed as arguments to
# `sh -c`, never spliced into the script text.

pvc_volume() { # pvc_volume NAMESPACE: the PV bound to NAMESPACE/pipeline-state, or ""
  local phase
  phase=$(k get pvc "$STATE_PVC" -n "$1" -o jsonpath='{.status.phase}' --ignore-not-found) ||
    die "kubectl get pvc $STATE_PVC -n $1 failed"
  [[ $phase == Bound ]] || return 0
  k get pvc "$STATE_PVC" -n "$1" -o jsonpath='{.spec.volumeName}'
}

# storage_pvs TEMPLATE: TEMPLATE (kubectl JSONPath over one PV) for each PersistentVolume of
# storage.yaml that exists. Not `get -f storage.yaml -o jsonpath={.items[...]}`: when only one
# object of the file exists, kubectl prints it bare, not in a List, and .items matches nothing.
storage_pvs() {
  local names n
  names=$(k get -f "$STORAGE_FILE" --ignore-not-found -o name) || return 1
  while read -r n; do
    [[ $n == persistentvolume/* ]] || continue
    k get "$n" -o jsonpath="$1" || return 1
  done <<<"$names"
}

pv_annotation() { # pv_annotation PV KEY
  k get pv "$1" -o jsonpath="{.metadata.annotations.${2//./\\.}}"
}

state_pod_manifest() {
  cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $STATE_IO_POD
  namespace: $1
  labels:
    app.kubernetes.io/name: $STATE_IO_POD
    app.kubernetes.io/part-of: pipelines
spec:
  restartPolicy: Never
  activeDeadlineSeconds: 1800
  terminationGracePeriodSeconds: 0
  containers:
    - name: io
      image: $STATE_IO_IMAGE
      command: ["sleep", "1800"]
      volumeMounts:
        - name: state
          mountPath: $STATE_MOUNT
  volumes:
    - name: state
      persistentVolumeClaim:
        claimName: $STATE_PVC
EOF
}

state_pod_start() { # state_pod_start NAMESPACE
  # A pod left by an interrupted earlier run that has finished (past its deadline: Failed)
  # would stay as it is under `apply` and never become Ready: replace it.
  local phase
  phase=$(k get pod "$STATE_IO_POD" -n "$1" --ignore-not-found -o jsonpath='{.status.phase}') ||
    die "cannot read pod $1/$STATE_IO_POD (kubectl get failed)"
  if [[ $phase == Failed || $phase == Succeeded ]]; then
    act "remove the finished pod $1/$STATE_IO_POD ($phase) an earlier run left behind" \
      k delete pod "$STATE_IO_POD" -n "$1" --wait=true --timeout="${TIMEOUT}s"
  fi
  act_from "start pod $1/$STATE_IO_POD (mounts $1/$STATE_PVC)" \
    state_pod_manifest "$1" -- k apply -f -
  ((DRY_RUN)) && return 0
  STARTED_PODS+=("$1")
  k wait --for=condition=Ready "pod/$STATE_IO_POD" -n "$1" --timeout="${TIMEOUT}s" >/dev/null ||
    die "pod $1/$STATE_IO_POD did not become Ready within ${TIMEOUT}s (image $STATE_IO_IMAGE)"
}

state_pod_stop() { # state_pod_stop NAMESPACE
  act "remove pod $1/$STATE_IO_POD" \
    k delete pod "$STATE_IO_POD" -n "$1" --ignore-not-found --wait=false
  local keep=() ns
  for ns in "${STARTED_PODS[@]}"; do
    [[ $ns == "$1" ]] || keep+=("$ns")
  done
  STARTED_PODS=("${keep[@]}")
}

state_exec() { # state_exec NAMESPACE [-i] -- COMMAND...
  local ns=$1
  shift
  k exec -n "$ns" "$STATE_IO_POD" "$@"
}

# make_tmp_dir VAR: a private temporary directory, removed on exit, its path in VAR.
make_tmp_dir() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/pipelines.XXXXXX")
  chmod 700 "$d"
  TMP_DIRS+=("$d")
  printf -v "$1" '%s' "$d"
}

cleanup() {
  local ns d
  for ns in "${STARTED_PODS[@]}"; do
    k delete pod "$STATE_IO_POD" -n "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  done
  for d in "${TMP_DIRS[@]}"; do
    rm -rf -- "$d"
  done
}

finish() { # finish: the closing line of a run
  if ((DRY_RUN)); then
    printf '==> dry run: %d change(s) would be made; nothing was changed\n' "$CHANGES"
  elif ((CHANGES == 0)); then
    printf '==> nothing to change\n'
  else
    printf '==> done: %d change(s)\n' "$CHANGES"
  fi
  ((WARNINGS == 0)) || printf '    %d warning(s) above\n' "$WARNINGS"
}
