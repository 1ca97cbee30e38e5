"""Supervision of backend processes: one owner task per instance decides every transition."""
