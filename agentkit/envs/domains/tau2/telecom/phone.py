"""How the simulated phone behaves: the status bar, the network search after a change, whether
mobile data and MMS work, and the speed test (tau2's ``TelecomUserTools`` internals)."""

from __future__ import annotations

from .user_models import (
    APNNames,
    MockPhoneAttributes,
    NetworkModePreference,
    NetworkStatus,
    NetworkTechnology,
    PerformanceLevel,
    SignalStrength,
    SimStatus,
    UserSurroundings,
)

SIGNAL_ICONS = {
    SignalStrength.NONE: "📵 No Signal",
    SignalStrength.POOR: "📶¹ Poor",
    SignalStrength.FAIR: "📶² Fair",
    SignalStrength.GOOD: "📶³ Good",
    SignalStrength.EXCELLENT: "📶⁴ Excellent",
}
PREFERRED_TECH = {
    NetworkModePreference.FOUR_G_ONLY: NetworkTechnology.FOUR_G,
    NetworkModePreference.THREE_G_ONLY: NetworkTechnology.THREE_G,
    NetworkModePreference.TWO_G_ONLY: NetworkTechnology.TWO_G,
}
TECH_SPEED = {
    NetworkTechnology.TWO_G: (0.1, 0.4),
    NetworkTechnology.THREE_G: (1.0, 5.0),
    NetworkTechnology.FOUR_G: (10.0, 100.0),
    NetworkTechnology.FIVE_G: (50.0, 500.0),
    NetworkTechnology.NONE: (0.0, 0.0),
}
SIGNAL_FACTOR = {
    SignalStrength.POOR: 0.2,
    SignalStrength.FAIR: 0.5,
    SignalStrength.GOOD: 0.8,
    SignalStrength.EXCELLENT: 1.0,
    SignalStrength.NONE: 0.0,
}
SPEED_BANDS = ((1, "Very Poor"), (5, "Poor"), (25, "Fair"), (100, "Good"))


def sim_status(device: MockPhoneAttributes) -> SimStatus:
    return SimStatus.MISSING if device.sim_card_missing else device.sim_card_status


def status_bar(device: MockPhoneAttributes) -> str:
    parts: list[str] = []
    if device.airplane_mode:
        parts.append("✈️ Airplane Mode")
    else:
        parts.append(SIGNAL_ICONS.get(device.network_signal_strength, "📵 No Signal"))
        tech = device.network_technology_connected
        if tech != NetworkTechnology.NONE:
            parts.append(tech.value)
        if device.data_enabled and tech != NetworkTechnology.NONE:
            parts.append("📱 Data Enabled")
            if device.data_saver_mode:
                parts.append("🔽 Data Saver")
        else:
            parts.append("📵 Data Disabled")
    if device.wifi_enabled and device.wifi_connected:
        parts.append(f"📡 Connected to {device.wifi_ssid}" if device.wifi_ssid else "📡 Enabled")
    if device.vpn_connected:
        parts.append("🔒 VPN Connected")
    parts.append(f"🔋 {device.battery_level}%")
    return " | ".join(parts)


def _no_service(device: MockPhoneAttributes) -> None:
    device.network_connection_status = NetworkStatus.NO_SERVICE
    device.network_technology_connected = NetworkTechnology.NONE
    device.network_signal_strength = SignalStrength.NONE


def network_search(device: MockPhoneAttributes, around: UserSurroundings) -> None:
    """Reconnect after a change: the preferred technology's signal where the SIM works, no
    service with no SIM, a locked SIM, airplane mode, a broken APN or an inactive line."""
    if sim_status(device) == SimStatus.ACTIVE:
        device.network_connection_status = NetworkStatus.CONNECTED
        signals = around.signal_strength
        pref = device.network_mode_preference
        tech = PREFERRED_TECH.get(pref, NetworkTechnology.FOUR_G)
        if pref == NetworkModePreference.FOUR_G_5G_PREFERRED:
            five = signals.get(NetworkTechnology.FIVE_G, SignalStrength.NONE)
            tech = (
                NetworkTechnology.FOUR_G
                if five == SignalStrength.NONE
                else NetworkTechnology.FIVE_G
            )
        device.network_technology_connected = tech
        device.network_signal_strength = signals.get(tech, SignalStrength.NONE)
    else:
        _no_service(device)
    if (
        device.airplane_mode
        or device.active_apn_settings.apn_name == APNNames.BROKEN
        or not around.line_active
    ):
        _no_service(device)


def mobile_data_working(device: MockPhoneAttributes, around: UserSurroundings) -> bool:
    if device.airplane_mode or device.network_signal_strength == SignalStrength.NONE:
        return False
    if device.network_connection_status == NetworkStatus.NO_SERVICE:
        return False
    if around.is_abroad and (not device.roaming_enabled or not around.roaming_allowed):
        return False
    return device.data_enabled and not around.mobile_data_usage_exceeded


def speed_test(
    device: MockPhoneAttributes, around: UserSurroundings
) -> tuple[float | None, str | None]:
    if not mobile_data_working(device, around):
        return None, "No Connection"
    factor = 1.0
    vpn = device.vpn_details
    if device.vpn_connected and vpn and vpn.server_performance == PerformanceLevel.POOR:
        factor = 0.1
    if device.data_saver_mode:
        factor *= 0.2
    low, high = TECH_SPEED.get(device.network_technology_connected, (0.0, 0.0))
    signal = SIGNAL_FACTOR.get(device.network_signal_strength, 0.0)
    speed = round((low + high) / 2.0 * signal * factor, 2)
    for limit, label in SPEED_BANDS:
        if speed < limit:
            return speed, label
    return speed, "Excellent"


def can_send_mms(device: MockPhoneAttributes, around: UserSurroundings) -> bool:
    if not mobile_data_working(device, around):
        return False
    if device.network_technology_connected == NetworkTechnology.TWO_G:
        return False
    if device.wifi_calling_enabled and device.wifi_calling_mms_over_wifi:
        return False
    if device.active_apn_settings.mmsc_url is None:
        return False
    app = device.app_statuses.get("messaging")
    return app is not None and app.permissions.storage and app.permissions.sms
