import json
import httpx
import pytest
from conftest import Org

def show(label, r):
    print(f"\n## {label}: {r.status_code} {r.headers.get('content-type')} {r.text[:300]}")

@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_probe(server, org: Org, other_org: Org) -> None:
    api = org.api
    k = api.create_key(name="p")
    kid = k["id"]
    key = k["key"]
    show("no ct valid", api.post("/v1/keys", content=b'{"name":"x"}'))
    show("text/plain valid", api.post("/v1/keys", content=b'{"name":"x"}', headers={"content-type": "text/plain"}))
    show("verify text/plain", api.post("/v1/keys/verify", content=json.dumps({"key": key}).encode(), headers={"content-type": "text/plain"}))
    show("verify no ct", api.post("/v1/keys/verify", content=json.dumps({"key": key}).encode()))
    big = b'{"name":"' + b"a" * 70000 + b'"}'
    def gen():
        for i in range(0, len(big), 8192):
            yield big[i:i+8192]
    show("chunked keys", api.post("/v1/keys", content=gen(), headers={"content-type": "application/json"}))
    show("chunked verify", api.post("/v1/keys/verify", content=gen(), headers={"content-type": "application/json"}))
    show("cl keys", api.post("/v1/keys", content=big, headers={"content-type": "application/json"}))
    show("chunked apps", api.post("/v1/apps", content=gen(), headers={"content-type": "application/json"}))
    show("chunked patch", api.patch(f"/v1/keys/{kid}", content=gen(), headers={"content-type": "application/json"}))
    show("bigint metadata", api.post("/v1/keys", json={"name": "x", "metadata": {"n": 10**30}}))
    show("bigint settings", api.post("/v1/profiles", json={"name": "x", "settings": {"n": 10**30}}))
    show("inf metadata", api.post("/v1/keys", content=b'{"name":"x","metadata":{"n":1e999}}', headers={"content-type": "application/json"}))
    show("NaN metadata", api.post("/v1/keys", content=b'{"name":"x","metadata":{"n":NaN}}', headers={"content-type": "application/json"}))
    show("nul name", api.post("/v1/keys", json={"name": "a\u0000b"}))
    show("nul metadata", api.post("/v1/keys", json={"name": "a", "metadata": {"a": "\u0000"}}))
    show("surrogate name", api.post("/v1/keys", content=b'{"name":"\\ud800"}', headers={"content-type": "application/json"}))
    show("surrogate verify", api.post("/v1/keys/verify", content=b'{"key":"\\ud800"}', headers={"content-type": "application/json"}))
    nested = {"a": 1}
    for _ in range(300):
        nested = {"a": nested}
    show("deep metadata", api.post("/v1/keys", json={"name": "x", "metadata": nested}))
    show("expires 9999-12", api.post("/v1/keys", json={"name": "x", "expires_at": "9999-12-31T23:59:59-12:00"}))
    show("expires 9999 Z", api.post("/v1/keys", json={"name": "x", "expires_at": "9999-12-31T23:59:59Z"}))
    show("app nul", api.post("/v1/keys", json={"name": "x", "app_id": "app_\u0000"}))
    show("path nul", api.get("/v1/keys/%00"))
    show("path key", api.get(f"/v1/keys/{key}"))
    show("query key", api.get(f"/v1/keys?api_key={key}"))
    show("query enc", api.get("/v1/keys?api_key=" + key.replace("_", "%5F")))
    show("query dbl", api.get("/v1/keys?api_key=" + key.replace("_", "%255F")))
    show("immutable", api.patch(f"/v1/keys/{kid}", json={"name": "y"}))
    show("bad fields", api.post("/v1/keys", json={"name": "", "expires_in_days": 0, "environment": "prod", "bogus": 1}))
    show("array", api.post("/v1/keys", json=[1]))
    show("verify array", api.post("/v1/keys/verify", json=[1]))
    show("put", api.http.put("/v1/keys"))
    show("unknown", api.get("/v1/nope"))
    show("no auth", httpx.get(server.base_url + "/v1/keys"))
    show("escalate", org.key_with("api_keys:write").post("/v1/keys", json={"name": "x", "scopes": ["users:read"]}))
    show("escalate full", org.key_with("api_keys:write").post("/v1/keys", json={"name": "x"}))
    show("missing", org.key_with("apps:read").get("/v1/keys"))
    show("other get", api.get(f"/v1/keys/{other_org.owner_key_id}"))
    show("org patch null", api.patch("/v1/org", json={"name": None}))
    show("res", api.post("/v1/resources", json={"name": "Models", "actions": ["a" * 41]}))
    show("res2", api.post("/v1/resources", json={"name": "models", "actions": ["BAD", "read", "read"]}))
    show("res3", api.post("/v1/resources", json={"name": "m2", "actions": []}))
