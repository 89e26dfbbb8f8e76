"""The head-end's use cases, one small runner per use case, behind the :class:`HeadEnd` façade.

=========================  ================================================================
module                     use case
=========================  ================================================================
:mod:`.collection`         2, 3: scheduled collection, register reads, MeterReadSchedule
                           runs, on-demand reads, the daily bulk export
:mod:`.clock`              13: clock sync, drift detection (``clock_drift_sync``)
:mod:`.switch`             6 and 7: connect/disconnect, OMS poll
:mod:`.limiter`            14 and 8 (DR): limiter threshold, emergency profile
:mod:`.events`             7: event-log polls (``event_marks``), alarm pushes decoded
:mod:`.account`            12: account move-out / move-in
:mod:`.discovery`          1: registration and discovery
=========================  ================================================================

:mod:`.base` is what every operation repeats: a session at its priority with the
use case's metric counted failed when the session's work raises (and the outcome noted
for the read-success report where the read is a scheduled one), the metric counted done,
events built and published. The runners read their settings and shared parts (fleet,
scheduler, publisher, data store, models, time source, tolerances) from the
:class:`~smmc_gateway.headend.service.HeadEnd` they were made for, so a setting changed
on the façade (a reload, a test) is what the next run uses.
"""
