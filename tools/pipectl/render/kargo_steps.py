"""Kargo promotion steps that ask the pipeline console: the gate, and CI's integration-test
verdict (http steps with the Kargo token)."""

from __future__ import annotations

from typing import Any

from pipectl.render.names import GATE_TOKEN_SECRET, INTTEST_POLL_INTERVAL, INTTEST_WAIT

# The Freight's image tag as a string (`quote`: an all-digit SHA must not turn into a number).
TAG_EXPRESSION = "${{ quote(imageFrom(vars.imageRepo).Tag) }}"


def _console_headers() -> list[dict[str, str]]:
    """The Kargo token (Secret GATE_TOKEN_SECRET, key `token`) for the console's API."""
    return [
        {
            "name": "Authorization",
            "value": f"Bearer ${{{{ secret('{GATE_TOKEN_SECRET}').token }}}}",
        },
        {"name": "Accept", "value": "application/json"},
    ]


def gate_step(alias: str = "gate") -> dict[str, Any]:
    """The http step asking the pipeline gate whether this tag may enter this stage now."""
    return {
        "uses": "http",
        "as": alias,
        # Errors (console unreachable) are retried a few times; a decision is never retried.
        "retry": {"errorThreshold": 3},
        "config": {
            "method": "GET",
            "url": "${{ vars.gateURL }}",
            "headers": _console_headers(),
            "queryParams": [
                {"name": "stage", "value": "${{ ctx.stage }}"},
                {"name": "tag", "value": TAG_EXPRESSION},
                {"name": "promotion", "value": "${{ ctx.promotion }}"},
                {"name": "actor", "value": "${{ ctx.meta.promotion.actor }}"},
            ],
            "timeout": "10s",
            "successExpression": "response.status == 200 && response.body.allowed == true",
            "failureExpression": "response.status != 200 || response.body.allowed != true",
            "errorExpression": (
                "response.body.message != nil ? string(response.body.message)"
                ' : "pipeline gate answered HTTP " + string(response.status)'
                ' + " without a decision"'
            ),
            "outputs": [
                {"name": "links", "fromExpression": "response.body.links"},
                {"name": "message", "fromExpression": "response.body.message"},
                {
                    "name": "breakGlass",
                    "fromExpression": (
                        'response.body.break_glass != nil ? response.body.break_glass : "none"'
                    ),
                },
            ],
        },
    }


# Statuses of `GET /api/v1/inttest` that say nothing about the tag and may pass: the endpoint
# not served yet (404, or 405 from a console that only knows POST, while Kargo's Stage and the
# console's Deployment roll out independently), a timeout or rate limit (408, 429). With 5xx
# (e.g. a damaged audit log) the step keeps waiting too; every other 4xx (400 malformed tag,
# 401 bad token, 403 scope) will not get better by asking again.
_INTTEST_TRANSIENT_4XX = (404, 405, 408, 429)
INTTEST_SUCCESS = 'response.status == 200 && response.body.result == "passed"'
INTTEST_FAILURE = (
    '(response.status == 200 && response.body.result != nil && response.body.result != "passed")'
    " || (response.status >= 400 && response.status < 500"
    + "".join(f" && response.status != {code}" for code in _INTTEST_TRANSIENT_4XX)
    + ")"
)
INTTEST_ERROR = (
    "response.status == 200"
    ' ? "integration test of " + string(response.body.tag) + " " + string(response.body.result)'
    ' + " (recorded " + string(response.body.entry.time) + " by "'
    ' + string(response.body.entry.actor) + "); once a run passes, promote the tag into'
    ' integration-test again"'
    ' : "pipeline console answered HTTP " + string(response.status)'
    ' + " for the integration-test result"'
    ' + (response.body.error != nil ? ": " + string(response.body.error) : "")'
)


def inttest_step() -> dict[str, Any]:
    """The http step that waits for CI's verdict on this tag (`GET /api/v1/inttest`): done
    when it passed; failed for good when it failed or the question is refused; otherwise
    (no result yet, console trouble) neither expression holds, so the step stays Running and
    Kargo asks again every INTTEST_POLL_INTERVAL, for at most INTTEST_WAIT."""
    return {
        "uses": "http",
        "as": "inttest",
        # timeout: a tag whose CI never reports fails after this long. errorThreshold:
        # consecutive transport errors (console restarting) tolerated; a Running answer
        # resets the count.
        "retry": {"timeout": INTTEST_WAIT, "errorThreshold": 10},
        "config": {
            "method": "GET",
            "url": "${{ vars.inttestURL }}",
            "headers": _console_headers(),
            "queryParams": [{"name": "tag", "value": TAG_EXPRESSION}],
            "timeout": "10s",
            "pollInterval": INTTEST_POLL_INTERVAL,
            "successExpression": INTTEST_SUCCESS,
            "failureExpression": INTTEST_FAILURE,
            "errorExpression": INTTEST_ERROR,
        },
    }
