#!/usr/bin/env bash
# runmelast.sh: remove the stonks-oracle pipeline from the gremlin cluster and keep its data
# (the same as `nix run .#teardown`).
#
# Exports the pipeline's state first, then removes in order: the ARC runner scale set, the ARC
# controller, Kargo, the Argo CD Applications, Argo CD, the pipeline namespaces. The
# stonks-oracle stage Applications go WITHOUT cascade, so beta/paper/live keep running.
# Never deletes anything in a stonks-oracle* namespace, never a PersistentVolume, never
# touches the NFS data beyond adding the export. Safe to run twice, or on a half-installed
# cluster. See docs/runbook.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=gitops/bootstrap/lib.sh
. "${PIPELINES_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}/gitops/bootstrap/lib.sh"

usage() {
  cat <<EOF
Usage: $PROG [--yes] [--dry-run] [--context NAME] [--timeout SECONDS] [--keep-namespaces]

Removes the pipeline and keeps its data: exports Kargo Stages/Freight/Promotions and the Argo CD
Applications/AppProjects/settings (never a Secret) to the state volumes under
exports/<UTC time>/, then removes ARC runners, ARC controller, Kargo, the Argo CD Applications
(the stonks-oracle ones without cascade), Argo CD and the pipeline namespaces.

  --yes              do not ask to confirm the kube context (required without a terminal)
  --dry-run          print every change in order, change nothing
  --context NAME     kube context (default: the current context)
  --timeout SECONDS  bound for each wait (default $TIMEOUT)
  --keep-namespaces  keep the pipeline namespaces (their Secrets and claims stay)
  -h, --help         this help

Environment: PIPELINES_ROOT (the repository; default: this script's directory),
PIPELINES_EXPORT_DIR (where an export goes when its state volume is not bound; default
./pipeline-exports), STATE_IO_IMAGE (image of the pod that writes the state volume).
Exit status: 0 done, 1 failed, 2 bad usage or not confirmed (nothing changed).
EOF
}

KEEP_NAMESPACES=0
while (($#)); do
  case $1 in
    -y | --yes) ASSUME_YES=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --keep-namespaces) KEEP_NAMESPACES=1 ;;
    --context | --timeout)
      [[ $# -ge 2 && -n $2 ]] || die 2 "$1 needs a value (see --help)"
      if [[ $1 == --context ]]; then CONTEXT=$2; else TIMEOUT=$2; fi
      shift
      ;;
    --context=*) CONTEXT=${1#*=} ;;
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
EXPORT_DIR="${PIPELINES_EXPORT_DIR:-$PWD/pipeline-exports}"
trap cleanup EXIT
STEPS=9

# ---- Argo CD Applications -------------------------------------------------------------------------

# Under --dry-run, the Applications an earlier step would have removed: later steps plan
# without them, as they would run.
declare -A PLANNED_GONE=()

# apps_table: "name<TAB>destination namespace<TAB>automated" per Application ("" without Argo CD).
# Call it as `table=$(apps_table)`: bash ignores the status of a command substitution in a
# here-string or `[[ ]]`, and a failed read must stop the teardown, not read as "no Applications".
apps_table() {
  argocd_crd || return 0
  local table name rest
  table=$(k get applications.argoproj.io -n "$ARGOCD_NS" -o \
    jsonpath='{range .items[*]}{.metadata.name}{"\t"}{.spec.destination.namespace}{"\t"}{.spec.syncPolicy.automated}{"\n"}{end}') ||
    die "kubectl get applications -n $ARGOCD_NS failed"
  while IFS=$'\t' read -r name rest; do
    [[ -n $name && -z ${PLANNED_GONE[$name]:-} ]] && printf '%s\t%s\n' "$name" "$rest"
  done <<<"$table"
  return 0
}

# Argo CD's CRDs outlive its Helm release (the chart keeps them): once seen, they stay.
ARGOCD_CRD=""
argocd_crd() {
  [[ -n $ARGOCD_CRD ]] || { crd_exists applications.argoproj.io && ARGOCD_CRD=1; }
}

# app_read NAME: one read of an Application: APP_FOUND, APP_FINS (its finalizers) and
# APP_RESOURCES ("kind<TAB>namespace<TAB>name" lines of what it deployed).
app_read() {
  local out
  APP_FOUND="" APP_FINS="" APP_RESOURCES=""
  [[ -z ${PLANNED_GONE[$1]:-} ]] && argocd_crd || return 0
  out=$(k get applications.argoproj.io "$1" -n "$ARGOCD_NS" --ignore-not-found -o \
    jsonpath='{.metadata.name}{"\n"}{.metadata.finalizers[*]}{"\n"}{range .status.resources[*]}{.kind}{"\t"}{.namespace}{"\t"}{.name}{"\n"}{end}') ||
    die "kubectl get application $1 -n $ARGOCD_NS failed"
  [[ -n $out ]] || return 0
  APP_FOUND=1
  APP_FINS=$(sed -n 2p <<<"$out")
  APP_RESOURCES=$(sed -n '3,$p' <<<"$out")
}
app_exists() { [[ -z ${PLANNED_GONE[$1]:-} ]] && exists applications.argoproj.io "$1" "$ARGOCD_NS"; }

# An Application of the application itself: removed without cascade, whatever else holds.
is_app_layer() { [[ $1 =~ $APP_NAMESPACE_RE || $2 =~ $APP_NAMESPACE_RE ]]; }

# cascade_blocker DEST RESOURCES: why an Application deploying into DEST with these
# resources must not be removed with cascade (empty: it may).
cascade_blocker() {
  local kind ns name
  if [[ $1 =~ $APP_NAMESPACE_RE ]]; then
    printf 'its destination namespace %s' "$1"
    return 0
  fi
  while IFS=$'\t' read -r kind ns name; do
    [[ -n $kind ]] || continue
    if [[ $kind == PersistentVolume ]]; then
      printf 'PersistentVolume %s' "$name"
      return 0
    elif [[ $ns =~ $APP_NAMESPACE_RE || ($kind == Namespace && $name =~ $APP_NAMESPACE_RE) ]]; then
      printf '%s %s in an application namespace' "$kind" "${ns:+$ns/}$name"
      return 0
    elif [[ $kind == Application && $name =~ $APP_NAMESPACE_RE ]] && app_exists "$name"; then
      printf 'Application %s, which would cascade into the application' "$name"
      return 0
    fi
  done <<<"$2"
}

# Only a running application controller honours the cascade finalizer; without it a cascading
# delete would hang, so Applications are then removed without cascade. Read once: nothing
# before the Helm uninstall stops it.
ARGOCD_RUNNING=""
argocd_running() {
  if [[ -z $ARGOCD_RUNNING ]]; then
    local ready
    ready=$(k get statefulset argocd-application-controller -n "$ARGOCD_NS" \
      -o jsonpath='{.status.readyReplicas}' --ignore-not-found) || ready=0
    if [[ ${ready:-0} -ge 1 ]]; then ARGOCD_RUNNING=yes; else ARGOCD_RUNNING=no; fi
  fi
  [[ $ARGOCD_RUNNING == yes ]]
}

# delete_app_orphan NAME: remove an Application and leave what it deployed running.
delete_app_orphan() {
  app_read "$1"
  if [[ -z $APP_FOUND ]]; then
    info "Application $1: gone already"
    return 0
  fi
  if [[ -n $APP_FINS ]]; then
    act "drop the finalizers of Application $1 ($APP_FINS) so its deletion does not cascade" \
      k patch applications.argoproj.io "$1" -n "$ARGOCD_NS" --type json \
      -p '[{"op":"remove","path":"/metadata/finalizers"}]'
  fi
  act "delete Application $1 without cascade (what it deployed keeps running)" \
    k delete applications.argoproj.io "$1" -n "$ARGOCD_NS" --wait=false
  ((DRY_RUN)) && PLANNED_GONE[$1]=1
  wait_gone applications.argoproj.io "$1" "$ARGOCD_NS" ||
    die "Application $1 is still there after ${TIMEOUT}s: kubectl -n $ARGOCD_NS get application $1 -o yaml"
}

# delete_app_cascade NAME DEST: remove an Application together with what it deployed.
delete_app_cascade() {
  local why
  app_read "$1"
  if [[ -z $APP_FOUND ]]; then
    info "Application $1: gone already"
    return 0
  fi
  why=$(cascade_blocker "$2" "$APP_RESOURCES")
  if [[ -z $why ]] && ! argocd_running; then
    why="resources Argo CD cannot delete now: its application controller is not running"
  fi
  if [[ -n $why ]]; then
    warn "Application $1 manages $why: removing it WITHOUT cascade"
    delete_app_orphan "$1"
    return 0
  fi
  if [[ " $APP_FINS " != *" $ARGO_FINALIZER "* ]]; then
    local patch="[{\"op\":\"add\",\"path\":\"/metadata/finalizers\",\"value\":[\"$ARGO_FINALIZER\"]}]"
    [[ -z $APP_FINS ]] || patch="[{\"op\":\"add\",\"path\":\"/metadata/finalizers/-\",\"value\":\"$ARGO_FINALIZER\"}]"
    act "add $ARGO_FINALIZER to Application $1 so Argo CD deletes what it deployed" \
      k patch applications.argoproj.io "$1" -n "$ARGOCD_NS" --type json -p "$patch"
  fi
  act "delete Application $1 and what it deployed" \
    k delete applications.argoproj.io "$1" -n "$ARGOCD_NS" --wait=false
  ((DRY_RUN)) && PLANNED_GONE[$1]=1
  wait_gone applications.argoproj.io "$1" "$ARGOCD_NS" ||
    die "Application $1 is still deleting after ${TIMEOUT}s (its resources or their finalizers):" \
      "kubectl -n $ARGOCD_NS get application $1 -o yaml"
}

# remove_apps_to DEST: cascade-remove the Applications deploying into namespace DEST.
remove_apps_to() {
  local name dest auto found=0 table
  table=$(apps_table)
  while IFS=$'\t' read -r name dest auto; do
    [[ -n $name && $dest == "$1" ]] || continue
    is_app_layer "$name" "$dest" && continue
    found=1
    delete_app_cascade "$name" "$dest"
  done <<<"$table"
  ((found)) || info "no Application deploys into $1"
}

# ---- export -----------------------------------------------------------------------------------------

count() { k get "$@" -o name | grep -c . || true; }

write_sums() { # write_sums DIR: SHA256SUMS over the files in DIR
  (
    cd "$1"
    shopt -s nullglob
    local files=(*)
    sha256sum -- "${files[@]}" >SHA256SUMS
  )
}

state_write() { # state_write NAMESPACE DIR: DIR's files into exports/$EXPORT_TS/ on the volume
  # shellcheck disable=SC2016  # $1, $2 expand in the pod's shell
  tar -C "$2" -cf - . | state_exec "$1" -i -- sh -c \
    'set -e; d="$1/exports/$2"; mkdir -p "$d"; tar -xf - -C "$d"; cd "$d"; sha256sum -c SHA256SUMS >/dev/null' \
    sh "$STATE_MOUNT" "$EXPORT_TS"
}

copy_local() { mkdir -p "$2" && chmod 700 "$2" && cp -R "$1/." "$2/"; }

export_part() { # export_part WHAT NAMESPACE DIR: to NAMESPACE/pipeline-state, else locally
  local pv dest
  pv=$(pvc_volume "$2")
  if [[ -z $pv ]]; then
    dest="$EXPORT_DIR/$EXPORT_TS/$1"
    warn "$2/$STATE_PVC is not bound: the $1 export goes to $dest"
    act "copy the $1 export to $dest" copy_local "$3" "$dest"
    return 0
  fi
  state_pod_start "$2"
  act "write the $1 export to PV $pv, exports/$EXPORT_TS/" state_write "$2" "$3"
  act "mark PV $pv: last export $EXPORT_TS" \
    k annotate pv "$pv" "$ANN_LAST_EXPORT=$EXPORT_TS" --overwrite
  state_pod_stop "$2"
}

manifest_header() { # manifest_header WHAT
  printf 'pipeline state export %s (%s)\nkube context: %s\nwritten by: runmelast.sh\n' \
    "$EXPORT_TS" "$1" "$CONTEXT"
  printf 'No Secret is exported; runmefirst.sh re-creates credentials from their inputs.\n'
  printf 'contents:\n'
}

export_state() {
  step "export pipeline state (no Secrets) to the state volumes"
  EXPORT_TS=$(date -u +%Y%m%dT%H%M%SZ)
  local tmp r n
  make_tmp_dir tmp
  if ns_exists "$KARGO_PROJECT" && crd_exists stages.kargo.akuity.io; then
    mkdir "$tmp/kargo"
    manifest_header "Kargo project $KARGO_PROJECT" >"$tmp/kargo/MANIFEST"
    for r in stages freights promotions; do
      if ! crd_exists "$r.kargo.akuity.io"; then
        printf '  %s.yaml: absent, no CRD\n' "$r" >>"$tmp/kargo/MANIFEST"
        continue
      fi
      k get "$r.kargo.akuity.io" -n "$KARGO_PROJECT" -o yaml >"$tmp/kargo/$r.yaml"
      n=$(count "$r.kargo.akuity.io" -n "$KARGO_PROJECT")
      printf '  %s.yaml: %s object(s)\n' "$r" "$n" >>"$tmp/kargo/MANIFEST"
      info "Kargo $r: $n"
    done
    if [[ -f $tmp/kargo/freights.yaml ]]; then
      k get freights.kargo.akuity.io -n "$KARGO_PROJECT" -o json >"$tmp/kargo/freights.json"
      printf '  freights.json: the same Freight, read back by runmefirst.sh\n' >>"$tmp/kargo/MANIFEST"
    fi
    write_sums "$tmp/kargo"
    export_part kargo "$KARGO_NS" "$tmp/kargo"
  else
    info "no Kargo project $KARGO_PROJECT: no Kargo state to export"
  fi
  if ns_exists "$ARGOCD_NS" && argocd_crd; then
    mkdir "$tmp/argocd"
    manifest_header "Argo CD in $ARGOCD_NS" >"$tmp/argocd/MANIFEST"
    for r in applications appprojects; do
      k get "$r.argoproj.io" -n "$ARGOCD_NS" -o yaml >"$tmp/argocd/$r.yaml"
      n=$(count "$r.argoproj.io" -n "$ARGOCD_NS")
      printf '  %s.yaml: %s object(s)\n' "$r" "$n" >>"$tmp/argocd/MANIFEST"
      info "Argo CD $r: $n"
    done
    k get configmaps argocd-cm argocd-rbac-cm -n "$ARGOCD_NS" --ignore-not-found -o yaml \
      >"$tmp/argocd/settings.yaml"
    printf '  settings.yaml: ConfigMaps argocd-cm, argocd-rbac-cm\n' >>"$tmp/argocd/MANIFEST"
    write_sums "$tmp/argocd"
    export_part argocd "$ARGOCD_NS" "$tmp/argocd"
  else
    info "no Argo CD Applications: no Argo CD state to export"
  fi
}

# ---- steps ------------------------------------------------------------------------------------------

preflight() {
  step "preflight: tools, kube context, cluster"
  require_tools kubectl helm tar sha256sum
  require_files "$STORAGE_FILE" "$ROOT_APP_FILE"
  ROOT_APP=$(manifest_name "$ROOT_APP_FILE")
  [[ -n $ROOT_APP ]] || die 2 "no metadata.name in $(rel "$ROOT_APP_FILE")"
  resolve_context
  check_reachable
  confirm "Remove the pipeline (its data stays on NFS)"
}

root_first() { # root_first TABLE: the apps table with the root Application's line first
  local name rest
  while IFS=$'\t' read -r name rest; do
    [[ $name == "$ROOT_APP" ]] && printf '%s\t%s\n' "$name" "$rest"
  done <<<"$1"
  while IFS=$'\t' read -r name rest; do
    [[ -n $name && $name != "$ROOT_APP" ]] && printf '%s\t%s\n' "$name" "$rest"
  done <<<"$1"
  return 0
}

release_app_layer() {
  step "stop Argo CD's automated sync; remove the stonks-oracle Applications without cascade"
  local name dest auto round table
  table=$(apps_table)
  if [[ -z $table ]]; then
    info "no Argo CD Applications"
    return 0
  fi
  # Parents first (the root), and again until none is automated: a parent that syncs before
  # it is frozen could otherwise restore a child's automation or re-create a deleted child.
  for round in 1 2 3; do
    local frozen=0
    while IFS=$'\t' read -r name dest auto; do
      [[ -n $name && -n $auto ]] || continue
      is_app_layer "$name" "$dest" && continue
      frozen=1
      act "stop automated sync of Application $name" \
        k patch applications.argoproj.io "$name" -n "$ARGOCD_NS" --type merge \
        -p '{"spec":{"syncPolicy":{"automated":null}}}'
    done < <(root_first "$table")
    ((frozen && !DRY_RUN)) || break
    ((round < 3)) || die "Applications keep re-enabling automated sync; is another controller managing them?"
    table=$(apps_table)
  done
  while IFS=$'\t' read -r name dest auto; do
    [[ -n $name ]] || continue
    is_app_layer "$name" "$dest" && delete_app_orphan "$name"
  done <<<"$table"
}

remove_arc_runners() {
  step "ARC runner scale set (runners deregister)"
  remove_apps_to "$ARC_RUNNERS_NS"
  crd_exists autoscalingrunnersets.actions.github.com || return 0
  local ars list
  list=$(k get autoscalingrunnersets.actions.github.com -n "$ARC_RUNNERS_NS" \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}') ||
    die "kubectl get autoscalingrunnersets -n $ARC_RUNNERS_NS failed"
  while read -r ars; do
    [[ -n $ars ]] || continue
    act "delete AutoscalingRunnerSet $ARC_RUNNERS_NS/$ars if still there (its runners deregister)" \
      k delete autoscalingrunnersets.actions.github.com "$ars" -n "$ARC_RUNNERS_NS" --wait=false
    wait_gone autoscalingrunnersets.actions.github.com "$ars" "$ARC_RUNNERS_NS" ||
      die "AutoscalingRunnerSet $ars is still there after ${TIMEOUT}s; the ARC controller must be running to remove it"
  done <<<"$list"
}

remove_arc_controller() {
  step "ARC controller"
  remove_apps_to "$ARC_SYSTEMS_NS"
}

remove_kargo() {
  step "Kargo (project $KARGO_PROJECT, then Kargo itself)"
  remove_apps_to "$KARGO_PROJECT"
  if crd_exists projects.kargo.akuity.io && exists projects.kargo.akuity.io "$KARGO_PROJECT"; then
    act "delete Kargo Project $KARGO_PROJECT (Kargo removes its namespace)" \
      k delete projects.kargo.akuity.io "$KARGO_PROJECT" --wait=false
    wait_gone projects.kargo.akuity.io "$KARGO_PROJECT" ||
      warn "Kargo Project $KARGO_PROJECT is still deleting after ${TIMEOUT}s (is Kargo's controller running?)"
  fi
  remove_apps_to "$KARGO_NS"
}

remove_app_layer() {
  step "Argo CD Applications (what is left, the root $ROOT_APP last)"
  local name dest auto table
  table=$(apps_table)
  while IFS=$'\t' read -r name dest auto; do
    [[ -n $name && $name != "$ROOT_APP" ]] || continue
    if is_app_layer "$name" "$dest"; then
      delete_app_orphan "$name"
    else
      delete_app_cascade "$name" "$dest"
    fi
  done <<<"$table"
  table=$(apps_table)
  if argocd_crd && app_exists "$ROOT_APP"; then
    delete_app_cascade "$ROOT_APP" "$ARGOCD_NS"
  elif [[ -z $table ]]; then
    info "no Argo CD Applications left"
  fi
}

remove_argocd() {
  step "Argo CD (Helm release $ARGOCD_RELEASE)"
  local name dest auto table
  table=$(apps_table)
  while IFS=$'\t' read -r name dest auto; do
    [[ -n $name ]] || continue
    warn "Application $name is still there; removing it without cascade before Argo CD goes"
    delete_app_orphan "$name"
  done <<<"$table"
  if h status "$ARGOCD_RELEASE" -n "$ARGOCD_NS" >/dev/null 2>&1; then
    act "helm uninstall $ARGOCD_RELEASE -n $ARGOCD_NS (Argo CD's CRDs stay)" \
      h uninstall "$ARGOCD_RELEASE" -n "$ARGOCD_NS"
  else
    info "Helm release $ARGOCD_RELEASE: not installed"
  fi
}

remove_namespaces() {
  step "pipeline namespaces (claims go; PVs stay Retain/Released; NFS data untouched)"
  if ((KEEP_NAMESPACES)); then
    info "kept (--keep-namespaces): their Secrets and claims stay"
    return 0
  fi
  local ns pv policy pvs present=()
  for ns in "${PIPELINE_NAMESPACES[@]}" "$KARGO_PROJECT"; do
    [[ ! $ns =~ $APP_NAMESPACE_RE ]] || die "refusing to delete $ns: an application namespace"
    if ns_exists "$ns"; then present+=("$ns"); else info "namespace $ns: gone already"; fi
  done
  for ns in "${present[@]}"; do
    # Read into a variable: a failed read in `< <(...)` would pass this check unseen.
    pvs=$(k get pvc -n "$ns" -o jsonpath='{range .items[*]}{.spec.volumeName}{"\n"}{end}') ||
      die "kubectl get pvc -n $ns failed: cannot check its volumes are Retain; no namespace deleted"
    while read -r pv; do
      [[ -n $pv ]] || continue
      policy=$(k get pv "$pv" -o jsonpath='{.spec.persistentVolumeReclaimPolicy}')
      [[ $policy == Retain ]] ||
        die "PV $pv (claimed in $ns) has reclaim policy '${policy:-unknown}', not Retain: deleting" \
          "$ns could delete its data. Patch it to Retain, or pass --keep-namespaces"
    done <<<"$pvs"
  done
  for ns in "${present[@]}"; do
    act "delete namespace $ns" k delete namespace "$ns" --wait=false
  done
  for ns in "${present[@]}"; do
    wait_gone namespace "$ns" ||
      die "namespace $ns is still terminating after ${TIMEOUT}s: kubectl get ns $ns -o yaml"
  done
}

volumes_summary() {
  local name phase policy lines
  if ! lines=$(storage_pvs \
    '{.metadata.name}{"\t"}{.status.phase}{"\t"}{.spec.persistentVolumeReclaimPolicy}{"\n"}'); then
    warn "could not read the PersistentVolumes back: kubectl get pv -l app.kubernetes.io/part-of=pipelines"
    return 0
  fi
  while IFS=$'\t' read -r name phase policy; do
    [[ -n $name ]] || continue
    info "PV $name: ${phase:-?}, ${policy:-?} (NFS data kept; runmefirst.sh binds it again)"
  done <<<"$lines"
}

preflight
export_state
release_app_layer
remove_arc_runners
remove_arc_controller
remove_kargo
remove_app_layer
remove_argocd
remove_namespaces
volumes_summary
finish
