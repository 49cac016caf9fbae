"""Elastic inference: `graphopt serve` holds several compiled variants of one model and picks,
per request, the most accurate one whose predicted completion meets the latency target.

    controller.py   the decisions (pure logic, fake-clock testable): variant choice, batching,
                    admission / load shedding, online service-time estimates
    variants.py     hash-verified artifacts, batch axis, resolution resizing, start-up timing
    service.py      controller + variants + one worker thread on an asyncio loop
    app.py          HTTP (Starlette): /infer, /health, /metrics; 400/401/413/503 paths
    metrics.py      Prometheus text format
    slicing.py      width-sliced MLP: masked training model, exact sliced export per width
    make_slices.py  train once on digits, compile every width, measure each width's accuracy
"""
