"""Device models as data: what the gateway knows of a meter family (docs/models.md).

- :mod:`~smmc_gateway.models.spec`: the typed parts (alarm registers and bit maps, push
  layouts, event-log code tables, scaled values, identification);
- :mod:`~smmc_gateway.models.parse`: their validation from a ``[models.NAME]`` table;
- :mod:`~smmc_gateway.models.shipped`: the model files shipped in ``models/data/`` and
  ``extends``;
- :mod:`~smmc_gateway.models.catalog`: shipped models as ModelConfig, by name;
- :mod:`~smmc_gateway.models.match`: which shipped model fits a discovered meter.

This package imports nothing at import time (``ops.config_model`` imports ``spec``).
"""
