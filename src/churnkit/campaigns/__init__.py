"""Campaign evaluation: A/B test statistics over per-user outcomes (see ``abtest``)."""
