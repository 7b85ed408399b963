#!/usr/bin/env bash
# Every shell step of the topology pipeline (pull-request plan, apply on merge, nightly drift),
# in one place: .github/workflows/topology.yml and the composite action (action.yml) call it, and
# it runs the same way on a laptop.
#
# Usage: .ci/topology.sh COMMAND [ENV]
#
#   install [VERSION]  pip install jelmore-infra==VERSION, or this repository when VERSION is
#                      empty or "local"
#   creds              write $NATS_CREDS_CONTENT / $NATS_NKEY_CONTENT (secret file contents) to
#                      private files and export NATS_CREDS / NATS_NKEY (their paths) to later
#                      steps through $GITHUB_ENV; the contents are never printed
#   validate [ENV]     validate the topology: ENV only, or every environment when ENV is not
#                      given (--all-envs when $TOPOLOGY_DIR/environments/ has files)
#   pr ENV             validate, then plan: the saved plan in $PLANS_DIR/ENV.plan, the Markdown
#                      plan (the pull-request comment) in $PLANS_DIR/ENV.md; exit 0 whether or not
#                      there are changes (has_changes says which), 1 on any error
#   apply ENV          apply the saved plan $PLANS_DIR/ENV.plan without asking; the tool re-checks
#                      it against the server and refuses a stale plan (exit 1)
#   drift ENV          plan against the server: exit 0 when it matches the topology; exit 2 after
#                      writing an issue body (Markdown, with the plan) to $DRIFT_DIR/ENV.md
#   issue ENV          the open drift issue of ENV, if any (needs gh and GH_TOKEN)
#   close-issue ENV N  close drift issue N with a comment saying the drift is gone (gh)
#
# ENV is an environment of topology/environments/ENV.yaml, passed as `--env ENV`; an empty ENV
# or "default" means no --env (a topology without environments). Files are named after ENV
# ("default" for the empty one).
#
# Outputs (appended to $GITHUB_OUTPUT when it is set): pr → has_changes (true, false or error),
# plan_path, markdown_path; drift → drifted (true, false or error), drift_path, issue_title;
# issue → issue_title, issue_number (empty when none is open).
#
# Environment:
#   JELMORE_INFRA    the command to run (default jelmore-infra; e.g. "python -m jelmore_infra")
#   TOPOLOGY_DIR     the topology directory (default topology)
#   PLANS_DIR        where pr writes plans (default plans)
#   DRIFT_DIR        where drift writes issue bodies (default drift)
#   ALLOW_DESTROY    "true": apply may delete (--allow-destroy)
#   ALLOW_DATA_LOSS  "true": apply may lose data (--allow-data-loss)
#   LOCK_TIMEOUT     how long apply waits for another apply's lock (default 2m)
#   NATS_CREDS, NATS_NKEY  credentials / nkey seed files, passed as --creds / --nkey
#   NATS_URL, JELMORE_PLAN_KEY, NATS_CA, NATS_CERT, NATS_KEY are read by jelmore-infra itself.

# Markdown backticks in printf formats are meant literally.
# shellcheck disable=SC2016
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$HERE")"

read -r -a TOOL <<<"${JELMORE_INFRA:-jelmore-infra}"
TOPOLOGY_DIR="${TOPOLOGY_DIR:-topology}"
PLANS_DIR="${PLANS_DIR:-plans}"
DRIFT_DIR="${DRIFT_DIR:-drift}"

die() {
    printf 'Error: %s\n' "$*" >&2
    exit 1
}

# usage [CODE]: the header above as help (on stdout for --help, on stderr after a misuse).
usage() {
    local code="${1:-1}"
    if [[ "$code" -eq 0 ]]; then
        sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    else
        sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    fi
    exit "$code"
}

# output NAME VALUE: a step output for GitHub Actions (nothing outside it).
output() {
    if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
        printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
    fi
}

# The file-name form of ENV: "default" for none. Refuses names that are not plain words, since
# they become file names here and in the tool.
env_name() {
    local env="${1:-}"
    if [[ -z "$env" || "$env" == "default" ]]; then
        printf 'default\n'
    elif [[ "$env" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]]; then
        printf '%s\n' "$env"
    else
        die "'$env' is not an environment name (letters, digits, '.', '_' and '-')"
    fi
}

# ENV_ARGS: the --env flag for ENV (none for the default); CONN_ARGS: credential files.
set_args() {
    local name
    name="$(env_name "${1:-}")"
    ENV_ARGS=()
    if [[ "$name" != "default" ]]; then
        ENV_ARGS=(--env "$name")
    fi
    CONN_ARGS=()
    if [[ -n "${NATS_CREDS:-}" ]]; then
        CONN_ARGS+=(--creds "$NATS_CREDS")
    fi
    if [[ -n "${NATS_NKEY:-}" ]]; then
        CONN_ARGS+=(--nkey "$NATS_NKEY")
    fi
}

tool() {
    "${TOOL[@]}" "$@"
}

# A link to the GitHub Actions run, when running in one.
run_link() {
    if [[ -n "${GITHUB_RUN_ID:-}" && -n "${GITHUB_REPOSITORY:-}" ]]; then
        printf '[workflow run %s](%s/%s/actions/runs/%s)' "$GITHUB_RUN_ID" \
            "${GITHUB_SERVER_URL:-https://github.com}" "$GITHUB_REPOSITORY" "$GITHUB_RUN_ID"
    fi
}

# indented FILE: the file as an indented Markdown code block (nothing in it can end the block
# or be read as HTML).
indented() {
    sed 's/^/    /' "$1"
}

cmd_install() {
    local version="${1:-}" py="${PYTHON:-python3}"
    if [[ -z "$version" || "$version" == "local" ]]; then
        "$py" -m pip install --quiet "$REPO_ROOT"
    else
        "$py" -m pip install --quiet "jelmore-infra==$version"
    fi
    tool --version
}

# write_secret VARIABLE CONTENT_VARIABLE FILE: CONTENT into a file only the owner can read, its
# path exported as VARIABLE to later steps (and this one).
write_secret() {
    local var="$1" content="${!2:-}" file="$3"
    if [[ -z "$content" ]]; then
        return 0
    fi
    (umask 077 && printf '%s\n' "$content" >"$file")
    if [[ -n "${GITHUB_ENV:-}" ]]; then
        printf '%s=%s\n' "$var" "$file" >>"$GITHUB_ENV"
    fi
    printf 'Wrote %s to %s\n' "$var" "$file" >&2
}

cmd_creds() {
    # RUNNER_TEMP is emptied by the runner at the start and end of every job.
    local dir="${RUNNER_TEMP:-}"
    if [[ -z "$dir" ]]; then
        dir="$(mktemp -d)"
    fi
    write_secret NATS_CREDS NATS_CREDS_CONTENT "$dir/jelmore-nats.creds"
    write_secret NATS_NKEY NATS_NKEY_CONTENT "$dir/jelmore-nats.nk"
}

cmd_validate() {
    if [[ $# -eq 0 ]]; then
        if compgen -G "$TOPOLOGY_DIR/environments/*.yaml" >/dev/null; then
            tool validate --topology "$TOPOLOGY_DIR" --all-envs
        else
            tool validate --topology "$TOPOLOGY_DIR"
        fi
        return
    fi
    set_args "$1"
    tool validate --topology "$TOPOLOGY_DIR" "${ENV_ARGS[@]}"
}

# failure_comment NAME WHAT ERRFILE: a comment saying the plan could not be made, and why.
failure_comment() {
    printf '### ❌ jelmore-infra could not %s `%s`\n\n' "$2" "$1"
    indented "$3"
    printf '\n'
}

cmd_pr() {
    [[ $# -eq 1 ]] || usage
    local name plan md err rc=0
    name="$(env_name "$1")"
    set_args "$1"
    mkdir -p "$PLANS_DIR"
    plan="$PLANS_DIR/$name.plan"
    md="$PLANS_DIR/$name.md"
    err="$(mktemp)"
    rm -f "$plan" "$md"
    output plan_path "$plan"
    output markdown_path "$md"

    if ! tool validate --topology "$TOPOLOGY_DIR" "${ENV_ARGS[@]}" 2>"$err"; then
        cat "$err" >&2
        failure_comment "$name" "validate" "$err" >"$md"
        output has_changes error
        rm -f "$err"
        return 1
    fi
    cat "$err" >&2

    tool plan --topology "$TOPOLOGY_DIR" "${ENV_ARGS[@]}" "${CONN_ARGS[@]}" \
        --markdown --detailed-exitcode -out "$plan" >"$md.body" 2>"$err" || rc=$?
    cat "$err" >&2
    {
        printf '**jelmore-infra plan for `%s`**\n\n' "$name"
        if [[ -s "$md.body" ]]; then
            cat "$md.body"
        else
            failure_comment "$name" "plan" "$err"
        fi
        if [[ -n "$(run_link)" ]]; then
            printf '\n<sub>From %s.</sub>\n' "$(run_link)"
        fi
    } >"$md"
    rm -f "$md.body" "$err"
    if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
        cat "$md" >>"$GITHUB_STEP_SUMMARY"
    fi
    case "$rc" in
        0) output has_changes false ;;
        2) output has_changes true ;;
        *)
            output has_changes error
            return 1
            ;;
    esac
}

cmd_apply() {
    [[ $# -eq 1 ]] || usage
    local name plan
    name="$(env_name "$1")"
    set_args "$1"
    plan="$PLANS_DIR/$name.plan"
    [[ -f "$plan" ]] || die "no saved plan $plan: run '$0 pr ${1:-default}' first"
    local gates=()
    if [[ "${ALLOW_DESTROY:-false}" == "true" ]]; then
        gates+=(--allow-destroy)
    fi
    if [[ "${ALLOW_DATA_LOSS:-false}" == "true" ]]; then
        gates+=(--allow-data-loss)
    fi
    tool apply "${ENV_ARGS[@]}" "${CONN_ARGS[@]}" "${gates[@]}" \
        --lock-timeout "${LOCK_TIMEOUT:-2m}" "$plan"
}

drift_title() {
    printf 'Topology drift: %s\n' "$1"
}

cmd_drift() {
    [[ $# -eq 1 ]] || usage
    local name body rc=0
    name="$(env_name "$1")"
    set_args "$1"
    body="$DRIFT_DIR/$name.md"
    output drift_path "$body"
    output issue_title "$(drift_title "$name")"
    local plan
    plan="$(mktemp)"
    tool plan --topology "$TOPOLOGY_DIR" "${ENV_ARGS[@]}" "${CONN_ARGS[@]}" \
        --markdown --detailed-exitcode >"$plan" || rc=$?
    case "$rc" in
        0)
            rm -f "$plan" "$body"
            output drifted false
            printf 'No drift: the server matches %s (%s).\n' "$TOPOLOGY_DIR" "$name" >&2
            return 0
            ;;
        2) ;;
        *)
            rm -f "$plan"
            output drifted error
            return "$rc"
            ;;
    esac
    mkdir -p "$DRIFT_DIR"
    {
        printf '### Topology drift in `%s`\n\n' "$name"
        printf 'The live server no longer matches `%s` (checked %s' "$TOPOLOGY_DIR" \
            "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        if [[ -n "$(run_link)" ]]; then
            printf ' by %s' "$(run_link)"
        fi
        printf '). The plan below is what `apply` would change to bring the server back to the '
        printf 'topology: apply it again, or change the topology files to match the server.\n\n'
        printf -- '---\n\n'
        cat "$plan"
    } >"$body"
    rm -f "$plan"
    output drifted true
    printf 'Drift in %s: wrote %s\n' "$name" "$body" >&2
    return 2
}

cmd_issue() {
    [[ $# -eq 1 ]] || usage
    local name title number
    name="$(env_name "$1")"
    title="$(drift_title "$name")"
    number="$(gh issue list --state open --search "\"$title\" in:title" --json number,title \
        --jq ".[] | select(.title == \"$title\") | .number" | head -n 1)"
    output issue_title "$title"
    output issue_number "$number"
    printf '%s\n' "${number:-no open issue}" >&2
}

cmd_close_issue() {
    [[ $# -eq 2 ]] || usage
    local name
    name="$(env_name "$1")"
    [[ "$2" =~ ^[0-9]+$ ]] || die "'$2' is not an issue number"
    gh issue close "$2" --comment "No drift in \`$name\` any more ($(date -u +%Y-%m-%dT%H:%M:%SZ))."
}

main() {
    [[ $# -ge 1 ]] || usage
    local command="$1"
    shift
    case "$command" in
        install) cmd_install "$@" ;;
        creds) cmd_creds "$@" ;;
        validate) cmd_validate "$@" ;;
        pr) cmd_pr "$@" ;;
        apply) cmd_apply "$@" ;;
        drift) cmd_drift "$@" ;;
        issue) cmd_issue "$@" ;;
        close-issue) cmd_close_issue "$@" ;;
        -h | --help | help) usage 0 ;;
        *) die "unknown command '$command' (see '$0 --help')" ;;
    esac
}

main "$@"
