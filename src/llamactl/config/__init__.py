"""Configuration: the settings model (settings.py) and how it is loaded (loading.py), how
the config file is changed safely (file.py, with ``llamactl.atomic_file``), and what
``GET``/``PUT /api/config`` serve (editor.py).

The settings are built once by ``load_settings`` and passed to whatever needs them; nothing
here is a module-level singleton. The names below are the ones the rest of llamactl uses.
"""

from llamactl.config.backend_settings import (
    BackendsConfig,
    BackendSettings,
    DockerConfig,
    backends_config_model,
    default_backends,
    register_backend_settings,
    unregister_backend_settings,
)
from llamactl.config.loading import (
    LoadedSettings,
    format_validation,
    load_settings,
    read_config_file,
)
from llamactl.config.pool_settings import GatewayConfig, PoolEntry, PoolsConfig
from llamactl.config.settings import (
    ActivityConfig,
    AuthConfig,
    ClusterConfig,
    EventsConfig,
    InstancesConfig,
    ModelsConfig,
    QuotaLimits,
    RateLimitConfig,
    Role,
    ServerConfig,
    Settings,
    UserEntry,
    default_config_path,
    default_data_dir,
    is_loopback,
    startup_problem,
)

__all__ = [
    "ActivityConfig",
    "AuthConfig",
    "BackendSettings",
    "BackendsConfig",
    "ClusterConfig",
    "DockerConfig",
    "EventsConfig",
    "GatewayConfig",
    "InstancesConfig",
    "LoadedSettings",
    "ModelsConfig",
    "PoolEntry",
    "PoolsConfig",
    "QuotaLimits",
    "RateLimitConfig",
    "Role",
    "ServerConfig",
    "Settings",
    "UserEntry",
    "backends_config_model",
    "default_backends",
    "default_config_path",
    "default_data_dir",
    "format_validation",
    "is_loopback",
    "load_settings",
    "read_config_file",
    "register_backend_settings",
    "startup_problem",
    "unregister_backend_settings",
]
