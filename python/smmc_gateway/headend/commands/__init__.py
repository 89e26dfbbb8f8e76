"""The MQTT command nouns, one module per noun; the dispatcher's table maps each to its handler.

============================  ==========================================================
noun                          module (helpers it routes to)
============================  ==========================================================
EndDeviceControls             :mod:`.end_device_controls` (:mod:`.customer_controls` for
                              the customer side, :mod:`.orders` for effective dates)
MeterReadings                 :mod:`.meter_readings` (``fromStore``:
                              :mod:`.customer_meter_data_set`)
MasterDataLinkageConfig       :mod:`.master_data_linkage_config` (:mod:`.han_linkage` for
                              HAN devices, :mod:`.orders` for effective dates)
EndDeviceFirmware             :mod:`.end_device_firmware`
MeterConfig                   :mod:`.meter_config`
PricingStructureConfig        :mod:`.pricing_structure_config`
EndDeviceConfig               :mod:`.end_device_config` (:mod:`.provisioning` for
                              create/change/delete and KeyBundle)
CustomerMeterDataSet          :mod:`.customer_meter_data_set`
ReadingsReport                :mod:`.readings_report`
MeterReadSchedule             :mod:`.meter_read_schedule`
============================  ==========================================================

Shared: :mod:`.common` (``Invalid``, ``failed``, error text, the per-meter errors). The
gates every request passes (served, enabled, bounded, parked while stopping, errors
clipped) are the dispatcher's: :mod:`smmc_gateway.headend.dispatcher`.
"""
