"""Backends on the nodes of a Ray cluster (cluster.engine: ray). Imports Ray lazily: the
package itself works without the [ray] extra, which only ``engine: ray`` needs."""
