"""The operations console: `framepress web`, a JSON API (described at /openapi.json) and
server-rendered pages over the workers' database and broker. Every asset is served from this
package (no CDN), including the vendored HLS player (static/vendor, hls.js, Apache-2.0)."""
