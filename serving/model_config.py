"""ModelServerConfig loading and validation, with TF Serving's rules and messages.

The file is a ``tensorflow.serving.ModelServerConfig`` text proto, parsed with the classes tensorflow-serving-api
ships (``tensorflow_serving.config.model_server_config_pb2``, which imports no TensorFlow). Validation follows
``ServerCore::ValidateModelConfigList`` / ``GetPlatform``: unique names, absolute base paths, a platform set.
"""
from __future__ import annotations

import os
from pathlib import Path

from tensorflow_serving.config import model_server_config_pb2

from .backends import PLATFORMS
from .configfiles import invalid_protobuf_file, parse_text_into
from .errors import FailedPrecondition, InvalidArgument

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig


class ConfigError(ValueError):
    """A model config file that cannot be read or parsed (the message names the file)."""


def parse_config_text(text: str, source: str = "<config>") -> ModelServerConfig:
    """Parse a ModelServerConfig text proto; ``ConfigError`` leads with TF Serving's wording
    (``Error parsing text-format tensorflow.serving.ModelServerConfig: LINE:COL: ...``) and names ``source``."""
    config = ModelServerConfig()
    try:
        parse_text_into(text, config)
    except ValueError as exc:  # TF Serving's stderr: protobuf's "Error parsing text-format ..." then the file
        raise ConfigError(invalid_protobuf_file(str(exc), source)) from exc
    return config


def load_config_file(path: str | os.PathLike[str]) -> ModelServerConfig:
    """Read, parse and validate ``--model_config_file``; every failure is a ``ConfigError`` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read model config file '{path}': {exc.strerror or exc}") from exc
    config = parse_config_text(text, str(path))
    try:
        validate(config)
    except (InvalidArgument, FailedPrecondition) as exc:
        raise ConfigError(f"Invalid model config file '{path}': {exc.message}") from exc
    return config


def single_model_config(name: str, base_path: str, platform: str = "tensorflow") -> ModelServerConfig:
    """The config TF Serving builds from ``--model_name``/``--model_base_path`` (relative paths made absolute)."""
    config = ModelServerConfig()
    entry = config.model_config_list.config.add()
    entry.name = name
    entry.base_path = os.path.abspath(base_path)
    entry.model_platform = platform
    return config


def platform_of(model: ModelConfig) -> str:
    """``GetPlatform``: model_platform, or the deprecated model_type TENSORFLOW; one of them must be set."""
    if model.model_type != model_server_config_pb2.MODEL_TYPE_UNSPECIFIED:
        if model.model_platform:
            raise InvalidArgument(
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                "ModelServerConfig::model_platform."
            )
        if model.model_type == model_server_config_pb2.TENSORFLOW:
            return "tensorflow"
        raise InvalidArgument(f"ModelServerConfig::model_type choice {model.model_type} not supported.")
    if not model.model_platform:
        raise InvalidArgument(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            "ModelServerConfig::model_platform."
        )
    return model.model_platform


def validate(config: ModelServerConfig) -> None:
    """Raise ``InvalidArgument`` for a config TF Serving refuses (and ours cannot serve)."""
    kind = config.WhichOneof("config")
    if kind == "custom_model_config":
        raise InvalidArgument("custom_model_config is not supported: use model_config_list")
    names: set[str] = set()
    for model in config.model_config_list.config:
        if not model.name:
            raise InvalidArgument("Every model in model_config_list needs a name")
        if model.name in names:
            raise InvalidArgument(f"Illegal to list model {model.name} multiple times in config list")
        names.add(model.name)
        if not os.path.isabs(model.base_path):
            raise InvalidArgument(
                f"Expected model {model.name} to have an absolute path or URI; got base_path()={model.base_path}"
            )
        platform = platform_of(model)
        if platform not in PLATFORMS:
            raise FailedPrecondition(f"PlatformConfigMap has no entry for platform {platform}")


def validate_transition(old: ModelServerConfig, new: ModelServerConfig) -> None:
    """``ValidateNoModelsChangePlatforms``: a model keeps its platform across reloads."""
    before = {m.name: platform_of(m) for m in old.model_config_list.config}
    for model in new.model_config_list.config:
        if model.name in before and platform_of(model) != before[model.name]:
            raise InvalidArgument(
                f"Illegal to change a model's platform. For model {model.name} platform was "
                f"{before[model.name]} and new platform requested is {platform_of(model)}"
            )


def substitute(text: str, variables: dict[str, str]) -> str:
    """Replace ``${NAME}`` placeholders (TF Serving's test configs use them for base paths)."""
    for key, value in variables.items():
        text = text.replace("${" + key + "}", value)
    return text
