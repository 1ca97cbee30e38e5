"""Backends llamactl can launch. Today: llama.cpp's llama-server."""
