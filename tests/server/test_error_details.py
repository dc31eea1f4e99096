"""``errorDetails`` that Nessie's clients read (found by Nessie's conformance tests)."""

from __future__ import annotations

from tests.server.helpers import API, ApiClient, error, with_namespace


def test_content_not_found_names_the_key_in_error_details(client: ApiClient) -> None:
    with_namespace(client)
    # Nessie's Java client reads the key from ContentKeyErrorDetails (spec 2 and later)
    body = error(client.get(f"{API}/trees/main/contents/bronze.a%1Db"), 404, "CONTENT_NOT_FOUND")
    assert body["errorDetails"] == {
        "type": "CONTENT_KEY",
        "contentKey": {"elements": ["bronze", "a.b"]},
    }
    old_client = client.get(
        f"{API}/trees/main/contents/bronze.x", headers={"Nessie-Client-Spec": "1"}
    )
    assert "errorDetails" not in error(old_client, 404, "CONTENT_NOT_FOUND")
