"""The OpenAPI 3.1 description of the server, written by hand (Starlette generates none) and served at /openapi.json.

A test checks that it names every route of the app with its methods, and nothing else.
"""

from __future__ import annotations

from typing import Any

from mnistctl import __version__
from mnistctl.prediction import LOW_CONFIDENCE


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_UNAUTHORIZED = _error("Missing or wrong token (only when the server was started with one).")
_TIMEOUT = _error("Not answered within the server's --timeout.")
_INTERNAL = _error('An unexpected failure: {"error": "internal error"}, logged by the server.')
_PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}
_TOP_K_PAIR = {
    "type": "array",
    "prefixItems": [{"type": "integer", "minimum": 0, "maximum": 9}, _PROBABILITY],
    "items": False,
    "description": "[digit, probability]",
}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Answer": {
        "type": "object",
        "required": ["file", "digit", "confidence", "top_k", "low_confidence"],
        "properties": {
            "file": {"type": "string", "description": 'The multipart file name, or "-" for a raw body.'},
            "digit": {"type": "integer", "minimum": 0, "maximum": 9},
            "confidence": {**_PROBABILITY, "description": "Calibrated probability of the digit."},
            "top_k": {"type": "array", "items": _TOP_K_PAIR, "description": "The K likeliest digits, best first."},
            "low_confidence": {"type": "boolean", "description": f"confidence < {LOW_CONFIDENCE}"},
            "label": {
                "type": "string",
                "description": 'The class name, for models whose classes are not digits ("Sneaker").',
            },
            "input": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}},
                "description": "With show=true: the 28x28 grey levels the model saw (28 rows of 28).",
            },
            "readings": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}},
                },
                "description": (
                    "With show=true, when the answer is the mean of two readings (a stroke that may or may not be "
                    "the digit's): both 28x28 inputs, the first as in input."
                ),
            },
            "probabilities": {
                "type": "array",
                "items": _PROBABILITY,
                "minItems": 10,
                "maxItems": 10,
                "description": "With probabilities=true: all ten, digit 0 first.",
            },
        },
    },
    "ImageError": {
        "type": "object",
        "required": ["file", "error"],
        "properties": {"file": {"type": "string"}, "error": {"type": "string"}},
    },
    "PredictResponse": {
        "type": "object",
        "required": ["model", "results"],
        "description": "The document `mnistctl predict --json` prints.",
        "properties": {
            "model": {"type": "string", "description": "The version that answered, e.g. mlp:2 or builtin."},
            "results": {"type": "array", "items": {"oneOf": [_ref("Answer"), _ref("ImageError")]}},
        },
    },
    "PixelsRequest": {
        "type": "object",
        "required": ["pixels"],
        "properties": {
            "pixels": {
                "description": "Already MNIST-style: white digit on black, 0..255; 28 rows of 28, or 784 numbers.",
                "oneOf": [
                    {
                        "type": "array",
                        "minItems": 28,
                        "maxItems": 28,
                        "items": {
                            "type": "array",
                            "minItems": 28,
                            "maxItems": 28,
                            "items": {"type": "number", "minimum": 0, "maximum": 255},
                        },
                    },
                    {
                        "type": "array",
                        "minItems": 784,
                        "maxItems": 784,
                        "items": {"type": "number", "minimum": 0, "maximum": 255},
                    },
                ],
            },
            "model": {"type": "string", "description": "NAME, NAME:VERSION or NAME@ALIAS (default: the server's)."},
            "top_k": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
        },
    },
    "PixelsResponse": {
        "type": "object",
        "required": ["model", "results"],
        "properties": {
            "model": {"type": "string"},
            "results": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["digit", "confidence", "top_k", "low_confidence", "probabilities"],
                            "properties": {
                                "digit": {"type": "integer", "minimum": 0, "maximum": 9},
                                "confidence": _PROBABILITY,
                                "top_k": {"type": "array", "items": _TOP_K_PAIR},
                                "low_confidence": {"type": "boolean"},
                                "label": {"type": "string"},
                                "probabilities": {
                                    "type": "array",
                                    "items": _PROBABILITY,
                                    "minItems": 10,
                                    "maxItems": 10,
                                },
                            },
                        },
                        _ref("Error"),
                    ]
                },
            },
        },
    },
    "ModelsResponse": {
        "type": "object",
        "required": ["default", "models"],
        "properties": {
            "default": {"type": ["string", "null"], "description": "What requests without a model get."},
            "models": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["model", "arch", "test_accuracy"],
                    "properties": {
                        "model": {"type": "string"},
                        "arch": {"type": "string"},
                        "dataset": {"type": "string", "description": "What it was trained on: mnist, fashion-mnist."},
                        "classes": {
                            "type": ["array", "null"],
                            "items": {"type": "string"},
                            "description": "The names of classes 0-9 when they are not the digits (null for digits).",
                        },
                        "test_accuracy": {"type": ["number", "null"]},
                        "aliases": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "model": {"type": "string"},
            "error": {"type": "string"},
        },
    },
}

_MODEL_PARAM = {
    "name": "model",
    "in": "query",
    "schema": {"type": "string"},
    "description": "NAME, NAME:VERSION or NAME@ALIAS (default: the server's --model).",
}


def _flag_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "boolean", "default": False}, "description": description}


PATHS: dict[str, Any] = {
    "/": {
        "get": {
            "summary": "The draw-a-digit page.",
            "security": [],
            "responses": {
                "200": {"description": "HTML", "content": {"text/html": {}}},
                "404": _error("Not installed."),
            },
        }
    },
    "/static/{name}": {
        "get": {
            "summary": "The page's files (mnistctl/serve/static/ only).",
            "security": [],
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The file."}, "404": _error("No such file.")},
        }
    },
    "/v1/predict": {
        "post": {
            "summary": "Digits in images: the rows of `mnistctl predict --json`.",
            "description": "Images as multipart/form-data (any field names, several files), or one image as the raw"
            " body (image/* or application/octet-stream). Each image is preprocessed as by `mnistctl predict` (or"
            " resized only, with raw=true). An image that cannot be read, or shows no digit, is an error row.",
            "parameters": [
                _MODEL_PARAM,
                {
                    "name": "top_k",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                },
                _flag_param("raw", "Images are already MNIST-style: skip preprocessing, only resize to 28x28."),
                _flag_param("show", 'Add "input": the 28x28 grey levels the model saw.'),
                _flag_param("probabilities", 'Add "probabilities": all ten.'),
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": {"type": "string", "contentMediaType": "image/*"},
                        }
                    },
                    "image/*": {"schema": {"type": "string", "contentMediaType": "image/*"}},
                    "application/octet-stream": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                "200": _json(_ref("PredictResponse"), "One row per image, in order (error rows included)."),
                "400": _error("Malformed request: multipart body, query parameter, no image."),
                "401": _UNAUTHORIZED,
                "404": _error("Unknown or unusable model."),
                "413": _error("Over the request size limit (--max-request-mb), or more than 256 images."),
                "415": _error("Neither multipart/form-data nor an image type."),
                "500": _INTERNAL,
                "503": _error("The model registry cannot be read."),
                "504": _TIMEOUT,
            },
        }
    },
    "/v1/predict/pixels": {
        "post": {
            "summary": "The digit in 28x28 pixels that are already MNIST-style (what the page sends).",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PixelsRequest")}}},
            "responses": {
                "200": _json(_ref("PixelsResponse"), "The answer, with all ten probabilities."),
                "400": _error("Not JSON, or pixels of the wrong shape or values (0..255, no NaN)."),
                "401": _UNAUTHORIZED,
                "404": _error("Unknown or unusable model."),
                "413": _error("Over 256 KB."),
                "415": _error("Not application/json."),
                "500": _INTERNAL,
                "504": _TIMEOUT,
            },
        }
    },
    "/v1/models": {
        "get": {
            "summary": "The models a request may name, and the default.",
            "responses": {
                "200": _json(_ref("ModelsResponse"), "Registered versions, newest first, then builtin."),
                "401": _UNAUTHORIZED,
            },
        }
    },
    "/healthz": {
        "get": {
            "summary": "Ready when the default model is loaded.",
            "security": [],
            "responses": {
                "200": _json(_ref("Health"), '{"status": "ok", "model": REF}'),
                "503": _json(_ref("Health"), "The default model cannot be loaded."),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics of the worker process that answers.",
            "responses": {
                "200": {"description": "Text format 0.0.4.", "content": {"text/plain": {}}},
                "401": _UNAUTHORIZED,
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document.",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
        }
    },
}


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mnistctl serve",
            "version": __version__,
            "description": "Handwritten-digit recognition over HTTP. Endpoints other than /, /static/*, /healthz and"
            " /openapi.json need 'Authorization: Bearer TOKEN' when the server was started with --token.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
