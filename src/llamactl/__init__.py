"""llamactl: create, run, watch and front llama.cpp model servers."""
