"""The agent's enrolled configuration, ``<root>/config.json`` (mode 0600).

Written once by ``enroll`` and read by every later command through ``load_config``.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from pinpoint_agent.backend._errors import ConfigError
from pinpoint_agent.backend._files import write_private_file
from pinpoint_agent.root import Root

__all__ = ["EnrolledConfig", "config_path", "load_config", "save_config"]


class EnrolledConfig(BaseModel):
    """What the agent needs to talk to its backend, as stored in ``<root>/config.json``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    api_key: SecretStr = Field(description="Key the backend issued at enrollment; sent in Authorization.")
    customer_id: str = Field(min_length=1, description="Customer this agent belongs to.")
    device_id: str = Field(min_length=1, description="Random id of this agent install, made at enrollment.")
    channel: str = Field(default="stable", description="Release channel the backend assigned (stable, dev…).")
    backend_url: str = Field(min_length=1, description="Base url of the backend API, without trailing slash.")
    encryption_key: SecretStr = Field(
        description="Local 256-bit AES-GCM key (64 hex digits) for secrets at rest; never sent anywhere."
    )
    enrolled_at: datetime | None = Field(default=None, description="When enrollment happened (UTC).")

    @field_validator("encryption_key")
    @classmethod
    def _key_is_256_bit_hex(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        try:
            ok = len(bytes.fromhex(raw)) == 32
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("encryption_key must be 64 hex digits (256 bits)")
        return value

    def encryption_key_bytes(self) -> bytes:
        """The local encryption key as 32 raw bytes (for ``SecretBox``)."""
        return bytes.fromhex(self.encryption_key.get_secret_value())

    def to_json_bytes(self) -> bytes:
        """Serialise with the secrets in clear, for the 0600 file only."""
        data = self.model_dump(mode="json")
        data["api_key"] = self.api_key.get_secret_value()
        data["encryption_key"] = self.encryption_key.get_secret_value()
        return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"


def config_path(root: Path | str) -> Path:
    """Where the config lives under ``root``."""
    return Root(root).config_file


def save_config(root: Path | str, config: EnrolledConfig) -> Path:
    """Write ``config`` to ``<root>/config.json`` (0600, atomic); refuse to replace an existing one."""
    path = config_path(root)
    try:
        write_private_file(path, config.to_json_bytes(), overwrite=False)
    except FileExistsError as exc:
        raise ConfigError(
            f"{path} already exists: this agent is already enrolled (remove the file to enroll again)",
            path=str(path),
        ) from exc
    return path


def load_config(root: Path | str) -> EnrolledConfig:
    """Read ``<root>/config.json``; ``ConfigError`` if it is missing, not 0600, or not a valid config."""
    path = config_path(root)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no agent config at {path}: run `pinpoint-agent enroll CODE` first", path=str(path)
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read agent config {path}: {exc.strerror}", path=str(path)) from exc
    with os.fdopen(fd, "rb") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"agent config {path} has mode {mode:04o}, it must be 0600 (run: chmod 600 {path})",
                path=str(path),
            )
        raw = handle.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"agent config {path} is not valid JSON: {exc}", path=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"agent config {path} must hold a JSON object", path=str(path))
    try:
        return EnrolledConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"agent config {path} is invalid: {problems}", path=str(path)) from exc
