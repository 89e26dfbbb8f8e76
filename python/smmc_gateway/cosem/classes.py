"""COSEM interface classes (DLMS UA Blue Book): ids, versions, attribute and
method tables, and the access-mode and result enumerations.

Each :class:`InterfaceClass` lists its attributes (1-based, attribute 1 is
always logical_name) and methods by their Blue Book names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from smmc_gateway import _core


class AttributeAccess(IntEnum):
    """attribute access_mode of Association LN (version 1+)."""

    NO_ACCESS = 0
    READ_ONLY = 1
    WRITE_ONLY = 2
    READ_AND_WRITE = 3
    AUTHENTICATED_READ_ONLY = 4
    AUTHENTICATED_WRITE_ONLY = 5
    AUTHENTICATED_READ_AND_WRITE = 6

    @property
    def can_read(self) -> bool:
        return self in (1, 3, 4, 6)

    @property
    def can_write(self) -> bool:
        return self in (2, 3, 5, 6)


class MethodAccess(IntEnum):
    """method access_mode of Association LN (version 1+)."""

    NO_ACCESS = 0
    ACCESS = 1
    AUTHENTICATED_ACCESS = 2


# Data-Access-Result (GET/SET) and Action-Result names and codes, as the core states them.
DATA_ACCESS_RESULTS: dict[str, int] = {name: v for v, name in _core.data_access_results()}
ACTION_RESULTS: dict[str, int] = {name: v for v, name in _core.action_results()}


@dataclass(frozen=True)
class InterfaceClass:
    class_id: int
    version: int
    name: str
    attributes: tuple[str, ...]  # index 0 is attribute 1
    methods: tuple[str, ...] = ()  # index 0 is method 1

    def attribute_id(self, name: str) -> int:
        return self.attributes.index(name) + 1

    def method_id(self, name: str) -> int:
        return self.methods.index(name) + 1

    def attribute_name(self, attribute_id: int) -> str | None:
        if 1 <= attribute_id <= len(self.attributes):
            return self.attributes[attribute_id - 1]
        return None

    def method_name(self, method_id: int) -> str | None:
        if 1 <= method_id <= len(self.methods):
            return self.methods[method_id - 1]
        return None


def _ic(cid: int, ver: int, name: str, attrs: str, methods: str = "") -> InterfaceClass:
    return InterfaceClass(cid, ver, name, ("logical_name", *attrs.split()), tuple(methods.split()))


CLASSES: dict[int, InterfaceClass] = {
    ic.class_id: ic
    for ic in (
        _ic(1, 0, "Data", "value"),
        _ic(3, 0, "Register", "value scaler_unit", "reset"),
        _ic(4, 0, "Extended register", "value scaler_unit status capture_time", "reset"),
        _ic(
            5,
            0,
            "Demand register",
            "current_average_value last_average_value scaler_unit status capture_time "
            "start_time_current period number_of_periods",
            "reset next_period",
        ),
        _ic(
            7,
            1,
            "Profile generic",
            "buffer capture_objects capture_period sort_method sort_object entries_in_use "
            "profile_entries",
            "reset capture",
        ),
        _ic(
            8,
            0,
            "Clock",
            "time time_zone status daylight_savings_begin daylight_savings_end "
            "daylight_savings_deviation daylight_savings_enabled clock_base",
            "adjust_to_quarter adjust_to_measuring_period adjust_to_minute "
            "adjust_to_preset_time preset_adjusting_time shift_time",
        ),
        _ic(9, 0, "Script table", "scripts", "execute"),
        _ic(11, 0, "Special days table", "entries", "insert delete"),
        _ic(
            15,
            2,
            "Association LN",
            "object_list associated_partners_id application_context_name xDLMS_context_info "
            "authentication_mechanism_name secret association_status security_setup_reference "
            "user_list current_user",
            "reply_to_HLS_authentication change_HLS_secret add_object remove_object add_user "
            "remove_user",
        ),
        _ic(17, 0, "SAP assignment", "SAP_assignment_list", "connect_logical_device"),
        _ic(
            18,
            0,
            "Image transfer",
            "image_block_size image_transferred_blocks_status "
            "image_first_not_transferred_block_number image_transfer_enabled "
            "image_transfer_status image_to_activate_info",
            "image_transfer_initiate image_block_transfer image_verify image_activate",
        ),
        _ic(
            20,
            0,
            "Activity calendar",
            "calendar_name_active season_profile_active week_profile_table_active "
            "day_profile_table_active calendar_name_passive season_profile_passive "
            "week_profile_table_passive day_profile_table_passive "
            "activate_passive_calendar_time",
            "activate_passive_calendar",
        ),
        _ic(21, 0, "Register monitor", "thresholds monitored_value actions"),
        _ic(22, 0, "Single action schedule", "executed_script type execution_time"),
        _ic(
            40,
            0,
            "Push setup",
            "push_object_list send_destination_and_method communication_window "
            "randomisation_start_interval number_of_retries repetition_delay",
            "push",
        ),
        _ic(
            64,
            1,
            "Security setup",
            "security_policy security_suite client_system_title server_system_title certificates",
            "security_activate key_transfer key_agreement generate_key_pair "
            "generate_certificate_request import_certificate export_certificate "
            "remove_certificate",
        ),
        _ic(
            70,
            0,
            "Disconnect control",
            "output_state control_state control_mode",
            "remote_disconnect remote_reconnect",
        ),
        _ic(
            71,
            0,
            "Limiter",
            "monitored_value threshold_active threshold_normal threshold_emergency "
            "min_over_threshold_duration min_under_threshold_duration emergency_profile "
            "emergency_profile_group_id_list emergency_profile_active actions",
        ),
        _ic(
            72,
            1,
            "M-Bus client",
            "mbus_port_reference capture_definition capture_period primary_address "
            "identification_number manufacturer_id version device_type access_number status "
            "alarm configuration encryption_key_status",
            "slave_install slave_deinstall capture reset_alarm synchronize_clock data_send "
            "set_encryption_key transfer_key",
        ),
        _ic(74, 0, "M-Bus master port setup", "comm_speed"),
        _ic(
            113,
            0,
            "Charge",
            "total_amount_paid charge_type priority unit_charge_active unit_charge_passive "
            "unit_charge_activation_time period charge_configuration last_collection_time "
            "last_collection_amount total_amount_remaining proportion",
            "update_unit_charge activate_passive_unit_charge collect "
            "update_total_amount_remaining set_total_amount_remaining",
        ),
    )
}


class UnknownClassError(KeyError):
    """An interface class id this model does not describe."""


def interface_class(class_id: int) -> InterfaceClass:
    try:
        return CLASSES[class_id]
    except KeyError:
        raise UnknownClassError(f"interface class {class_id} is not known") from None
