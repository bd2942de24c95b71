"""Named bounds on input, in one place."""

from typing import Final

NAME_MAX: Final = 100
DESCRIPTION_MAX: Final = 1000
METADATA_MAX_BYTES: Final = 4 * 1024
PROFILE_SETTINGS_MAX_BYTES: Final = 16 * 1024
EXPIRES_IN_DAYS_MIN: Final = 1
EXPIRES_IN_DAYS_MAX: Final = 3650
SCOPES_MAX: Final = 200
PAGE_DEFAULT: Final = 50
PAGE_MAX: Final = 200
REQUEST_BODY_MAX_BYTES: Final = 64 * 1024
RESOURCE_ACTIONS_MAX: Final = 50
# Organization lifecycle settings (services/expiry.py).
RETENTION_DAYS_MAX: Final = 3650
WARNING_DAYS_MAX: Final = 365
WARNING_THRESHOLDS_MAX: Final = 5
ROTATION_PERIOD_DAYS_MAX: Final = 3650
