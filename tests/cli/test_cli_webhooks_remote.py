"""``keyplane webhooks …`` against a real server over loopback."""

from __future__ import annotations

from support.remote_cli import Cli

URL = "https://example.com/hooks/keyplane"


def test_create_shows_the_secret_once_and_show_never(cli: Cli) -> None:
    result = cli("webhooks", "create", URL, "--events", "key.created,key.deleted")
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("secret ")]
    secret = line.split()[-1]
    assert secret.startswith("whsec_")
    assert "only time the signing secret is shown" in result.stderr
    webhook_id = result.stdout.split()[1]
    shown = cli("webhooks", "show", webhook_id)
    assert shown.exit_code == 0, shown.output
    assert secret not in shown.output
    assert "key.created, key.deleted" in shown.stdout


def test_a_webhook_is_listed_changed_tested_rolled_and_deleted(cli: Cli) -> None:
    made = cli.json("webhooks", "create", URL, "--events", "*", "--description", "all")
    assert made["events"] == ["*"]
    assert made["secret"].startswith("whsec_")
    assert [w["id"] for w in cli.json("webhooks", "list")] == [made["id"]]
    assert made["id"] in cli("webhooks", "list").stdout

    changed = cli.json(
        "webhooks", "update", made["id"], "--endpoint-url", URL + "/v2", "--events", "key.created"
    )
    assert changed["url"] == URL + "/v2"
    assert changed["events"] == ["key.created"]

    delivery = cli.json("webhooks", "test", made["id"])
    assert delivery["event_type"] == "webhook.test"
    deliveries = cli.json("webhooks", "deliveries", made["id"])
    assert [d["id"] for d in deliveries] == [delivery["id"]]
    assert "webhook.test" in cli("webhooks", "deliveries", made["id"]).stdout

    assert cli("webhooks", "roll-secret", made["id"]).exit_code == 2  # asks first
    rolled = cli.json("webhooks", "roll-secret", made["id"], "--yes")
    assert rolled["secret"].startswith("whsec_")
    assert rolled["secret"] != made["secret"]
    assert rolled["previous_secret_valid_until"] is not None

    disabled = cli.json("webhooks", "update", made["id"], "--disable")
    assert disabled["enabled"] is False
    refused = cli("webhooks", "test", made["id"])
    assert refused.exit_code == 1  # 409 while disabled
    assert "(409)" in refused.stderr

    assert cli("webhooks", "delete", made["id"]).exit_code == 2
    assert cli.json("webhooks", "delete", made["id"], "--yes")["deleted"] is True
    assert cli("webhooks", "show", made["id"]).exit_code == 4


def test_a_refused_url_names_the_field(cli: Cli) -> None:
    result = cli("webhooks", "create", "http://169.254.169.254/latest", "--events", "*")
    assert result.exit_code == 1
    assert "(422)" in result.stderr
    assert "url:" in result.stderr
