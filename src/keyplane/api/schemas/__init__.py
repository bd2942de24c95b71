"""Request and response bodies of the REST API (and its OpenAPI document), one module per
feature; ``common`` holds what they share."""
