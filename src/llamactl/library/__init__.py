"""The model library (issue 33): the GGUF models on disk (catalog.py, their headers read by
gguf_info.py), pulling more from the Hugging Face Hub (hub.py resolves a source, download.py
fetches one file safely, pulls.py runs the jobs, pull_jobs.py is one job and what the store
keeps of it, for a restart to resume it), and where pulled files came from (sources.py)."""
