//! Arbitrary bytes through the bulk profile decoder and the MeterReadings
//! JSON writer: never panics. The last byte picks the scaler of the value
//! columns, so every decimal-writing path (scalers -128..127) is reached.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smmc_core::profile::json::{profile_to_json, ColumnSpec};
use smmc_core::profile::{decode_table, ClockColumn};

fuzz_target!(|data: &[u8]| {
    let _ = decode_table(data, ClockColumn::Auto, Some(900));
    let scaler = data.last().map_or(0, |b| *b as i8);
    let cols: Vec<ColumnSpec> = (2..5)
        .map(|index| ColumnSpec {
            index,
            reading_type: "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0".into(),
            obis: "1.0.1.8.0.255".into(),
            unit: "kWh".into(),
            scaler,
        })
        .collect();
    let _ = profile_to_json(data, 0, &cols, Some(1), Some(900));
});
