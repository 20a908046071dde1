"""The [sending] section: defaults, a config file, and bad values named at start-up."""

from __future__ import annotations

import pytest

from hub.settings import QuietHours, SendingSettings, SettingsError, load_settings


def test_defaults_hold_sms_to_daytime_and_limit_nothing():
    sending = SendingSettings()
    assert sending.quiet_hours == {"sms": QuietHours(start="09:00", end="21:00")}
    assert sending.global_rate_per_second is None and sending.rate_per_second == {}
    assert sending.frequency_cap is None and sending.require_opt_in is False


def test_a_config_file_sets_rates_windows_and_the_cap(tmp_path, monkeypatch):
    config = tmp_path / "hub.toml"
    config.write_text(
        "[sending]\nglobal_rate_per_second = 100\nrate_per_second = { email = 50, sms = 5 }\n"
        "frequency_cap = { max = 3, days = 7 }\n"
        '[sending.quiet_hours]\nemail = { start = "08:00", end = "22:00" }\n'
    )
    monkeypatch.setenv("HUB_CONFIG_FILE", str(config))
    sending = load_settings().sending
    assert sending.rate_per_second == {"email": 50, "sms": 5} and sending.global_rate_per_second == 100
    assert sending.quiet_hours["email"] == QuietHours(start="08:00", end="22:00")
    assert sending.frequency_cap is not None and sending.frequency_cap.max == 3


@pytest.mark.parametrize("bad", [
    {"rate_per_second": {"sms": 0}},
    {"global_rate_per_second": -5},
    {"quiet_hours": {"sms": {"start": "9:00", "end": "21:00"}}},
    {"quiet_hours": {"sms": {"start": "21:00", "end": "21:00"}}},
    {"frequency_cap": {"max": 0, "days": 7}},
    {"surprise": True},
])
def test_bad_values_stop_start_up_naming_the_setting(bad):
    with pytest.raises(SettingsError, match="sending"):
        load_settings(sending=bad)
