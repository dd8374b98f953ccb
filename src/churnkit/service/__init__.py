"""The prediction service (BentoML): ``app`` wires the endpoints; ``state`` holds settings and
the loaded models; ``gate`` checks token, size and readiness; ``schemas`` validates requests;
``engine`` computes through the one Scorer; ``launch`` starts the server for ``churnkit serve``.

Importing this package imports no BentoML service: ``churnkit.service.app`` defines it.
"""
