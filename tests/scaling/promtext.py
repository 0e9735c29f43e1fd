"""Scrape a Prometheus endpoint and index its samples by (name, labels)."""
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def get(url, timeout=5):
    """(status, body) without raising on 503."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(url, timeout=5):
    """{sample name: {frozenset(labels.items()): value}}"""
    status, body = get(url, timeout)
    assert status == 200, body
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


def value(samples, metric, **labels):
    return samples.get(metric, {}).get(frozenset(labels.items()))
