"""The customer's device tools (tau2's ``TelecomUserTools``): 30 tools a dual-control user calls
on their phone, and the helpers tasks use to break the phone and to assert its state."""

from __future__ import annotations

from typing import Any

from agentkit.envs.tau2.toolkit import Toolkit, tool

from . import phone
from .user_models import (
    APNNames,
    APNSettings,
    MockPhoneAttributes,
    NetworkModePreference,
    NetworkStatus,
    PerformanceLevel,
    SignalStrength,
    SimStatus,
    TelecomUserDB,
    UserSurroundings,
    VpnDetails,
)

SIM_TEXT = {
    SimStatus.ACTIVE: "Your SIM card is active and working.",
    SimStatus.MISSING: "No SIM card detected in the phone.",
    SimStatus.LOCKED_PIN: "The SIM card is locked with a PIN code.",
    SimStatus.LOCKED_PUK: "The SIM card is locked with a PUK code.",
}
SPEED_ADVICE = {
    "Very Poor": "Connection is very slow. Basic web browsing might be difficult.",
    "Poor": "Connection is slow. Web browsing may be sluggish, streaming difficult.",
    "Fair": "Connection is okay for web browsing and some standard definition streaming.",
    "Good": "Connection is good for most activities, including HD streaming.",
    "Excellent": "Connection is very fast.",
}


def _on(flag: bool) -> str:
    return "ON" if flag else "OFF"


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def _vpn_default() -> VpnDetails:
    return VpnDetails(
        server_address="192.168.1.1",
        protocol="OpenVPN",
        server_performance=PerformanceLevel.EXCELLENT,
    )


class TelecomUserTools(Toolkit):
    db: TelecomUserDB

    @property
    def device(self) -> MockPhoneAttributes:
        return self.db.device

    @property
    def surroundings(self) -> UserSurroundings:
        return self.db.surroundings

    def _bar(self, text: str) -> str:
        return f"{text}\nStatus Bar: {phone.status_bar(self.device)}"

    def simulate_network_search(self) -> None:
        phone.network_search(self.device, self.surroundings)

    # reads ---------------------------------------------------------------------------------
    @tool()
    def check_status_bar(self) -> str:
        return f"Status Bar: {phone.status_bar(self.device)}"

    @tool()
    def check_network_status(self) -> str:
        d = self.device
        lines = [
            f"Airplane Mode: {_on(d.airplane_mode)}",
            f"SIM Card Status: {phone.sim_status(d).value}",
            f"Cellular Connection: {d.network_connection_status.value}",
            f"Cellular Signal: {d.network_signal_strength.value}",
            f"Cellular Network Type: {d.network_technology_connected.value}",
            f"Mobile Data Enabled: {_yes(d.data_enabled)}",
            f"Data Roaming Enabled: {_yes(d.roaming_enabled)}",
            f"Wi-Fi Radio: {_on(d.wifi_enabled)}",
            f"Wi-Fi Connected: {_yes(d.wifi_connected)}",
        ]
        if d.wifi_connected:
            lines.append(f"Connected Wi-Fi Network: {d.wifi_ssid}")
        return "\n".join(lines)

    @tool()
    def check_network_mode_preference(self) -> str:
        return f"Network Mode Preference: {self.device.network_mode_preference.value}"

    @tool()
    def run_speed_test(self) -> str:
        speed, label = phone.speed_test(self.device, self.surroundings)
        if speed is None:
            return f"Speed test failed: {label or 'Could not determine speed'}."
        advice = SPEED_ADVICE.get(label or "", "")
        return f"Speed Test Result: {speed:.2f} Mbps ({label}). {advice}"

    @tool()
    def check_sim_status(self) -> str:
        status = phone.sim_status(self.device)
        return SIM_TEXT.get(status, f"Unknown SIM status: {status.value}")

    @tool()
    def check_data_restriction_status(self) -> str:
        if self.device.data_saver_mode:
            return "Data Saver mode is ON (limits data usage)."
        return "Data Saver mode is OFF."

    @tool()
    def check_apn_settings(self) -> str:
        apn = self.device.active_apn_settings
        return (
            f"Current APN Name: {apn.apn_name.value or 'Not Set'}\n"
            f"MMSC URL (for picture messages): {apn.mmsc_url or 'Not Set'}\n"
            "(These are technical settings, usually best left unchanged.)"
        )

    @tool()
    def check_wifi_status(self) -> str:
        d = self.device
        if not d.wifi_enabled:
            return "Wi-Fi is turned OFF."
        if d.wifi_connected:
            return (
                f"Wi-Fi is ON and connected to '{d.wifi_ssid}'. "
                f"Signal strength: {d.wifi_signal_strength.value}."
            )
        return "Wi-Fi is ON but not connected to any network."

    @tool()
    def check_wifi_calling_status(self) -> str:
        return f"Wi-Fi Calling is currently turned {_on(self.device.wifi_calling_enabled)}."

    @tool()
    def check_vpn_status(self) -> str:
        d = self.device
        if d.vpn_connected:
            details = d.vpn_details.model_dump() if d.vpn_details else None
            if details:
                return f"VPN is ON and connected. Details: {details}"
            return "VPN is ON and connected (no specific details available)."
        if d.vpn_enabled_setting:
            return "VPN is turned ON in settings, but currently not connected."
        return "VPN is turned OFF."

    @tool()
    def check_installed_apps(self) -> str:
        names = ", ".join(self.device.app_statuses)
        return f"The following apps are installed on the phone: {names}"

    def _granted(self, app_name: str) -> list[str] | None:
        app = self.device.app_statuses.get(app_name)
        if not app:
            return None
        perms = app.permissions.model_dump().items()
        return [name.replace("_", " ").lower() for name, allowed in perms if allowed]

    @tool()
    def check_app_status(self, app_name: str) -> str:
        granted = self._granted(app_name)
        if granted is None:
            return f"App '{app_name}' not found on this phone."
        lines = [f"Status for App: {app_name}"]
        if not granted:
            lines.append(" - Permissions: None granted.")
        else:
            lines.append(" - Permissions Granted:")
            lines.extend(f"   - {perm}" for perm in granted)
        return "\n".join(lines)

    @tool()
    def check_app_permissions(self, app_name: str) -> str:
        granted = self._granted(app_name)
        if granted is None:
            return f"App '{app_name}' not found on this phone."
        if not granted:
            return f"App '{app_name}' currently has no permissions granted."
        return f"App '{app_name}' has permission for: {', '.join(granted)}."

    @tool()
    def can_send_mms(self) -> str:
        if phone.can_send_mms(self.device, self.surroundings):
            return "Your messaging app can send MMS messages."
        return "Your messaging app cannot send MMS messages."

    @tool()
    def check_payment_request(self) -> str:
        request = self.surroundings.payment_request
        if request is None:
            return "No payment request has been made."
        return f"You have a payment request for bill {request.bill_id} of {request.amount_due} USD."

    # changes -------------------------------------------------------------------------------
    @tool(mutates=True)
    def set_network_mode_preference(self, mode: Any) -> str:
        try:
            chosen = NetworkModePreference(mode)
        except ValueError:
            options = ", ".join(m.value for m in NetworkModePreference)
            return self._bar(
                f"Failed to set network mode: '{mode}' is not a valid option. "
                f"Please use one of: {options}"
            )
        self.device.network_mode_preference = chosen
        self.simulate_network_search()
        return self._bar(f"Preferred Network Mode set to: {chosen.value}")

    def _toggle_airplane_mode(self) -> bool:
        d = self.device
        was_on = d.airplane_mode
        d.airplane_mode = not was_on
        if was_on:
            d.network_connection_status = NetworkStatus.SEARCHING
        if not was_on or d.wifi_enabled:
            d.wifi_connected = False
            d.wifi_ssid = None
            d.wifi_signal_strength = SignalStrength.NONE
        if not was_on and d.vpn_connected:
            self._disconnect_vpn()
        self.simulate_network_search()
        return d.airplane_mode

    @tool(mutates=True)
    def toggle_airplane_mode(self) -> str:
        return self._bar(f"Airplane Mode is now {_on(self._toggle_airplane_mode())}.")

    def _set_by_toggle(self, toggle: Any, want: bool) -> None:
        if toggle() != want:
            toggle()

    def turn_airplane_mode_on(self) -> str:
        self._set_by_toggle(self._toggle_airplane_mode, True)
        return "Airplane Mode is now ON."

    def turn_airplane_mode_off(self) -> str:
        self._set_by_toggle(self._toggle_airplane_mode, False)
        return "Airplane Mode is now OFF."

    @tool(mutates=True)
    def reseat_sim_card(self) -> str:
        self.device.sim_card_missing = False
        self.simulate_network_search()
        return self._bar("SIM card re-seated successfully.")

    def unseat_sim_card(self) -> str:
        self.device.sim_card_missing = True
        self.simulate_network_search()
        return "SIM card un-seated successfully."

    def lock_sim_card(self, mode: str) -> str:
        if mode == "pin":
            self.device.sim_card_status = SimStatus.LOCKED_PIN
        elif mode == "puk":
            self.device.sim_card_status = SimStatus.LOCKED_PUK
        self.simulate_network_search()
        return f"SIM card locked successfully in {mode} mode."

    def _toggle_data(self) -> bool:
        self.device.data_enabled = not self.device.data_enabled
        self.simulate_network_search()
        return self.device.data_enabled

    @tool(mutates=True)
    def toggle_data(self) -> str:
        return self._bar(f"Mobile Data is now {_on(self._toggle_data())}.")

    def turn_data_on(self) -> str:
        self.device.data_enabled = True
        return "Data connection restored."

    def turn_data_off(self) -> str:
        self._set_by_toggle(self._toggle_data, False)
        return "Data connection broken."

    def _toggle_roaming(self) -> bool:
        self.device.roaming_enabled = not self.device.roaming_enabled
        self.simulate_network_search()
        return self.device.roaming_enabled

    @tool(mutates=True)
    def toggle_roaming(self) -> str:
        return self._bar(f"Data Roaming is now {_on(self._toggle_roaming())}.")

    def turn_roaming_on(self) -> str:
        self._set_by_toggle(self._toggle_roaming, True)
        return "Data Roaming is now ON."

    def turn_roaming_off(self) -> str:
        self._set_by_toggle(self._toggle_roaming, False)
        return "Data Roaming is now OFF."

    def _toggle_data_saver(self) -> bool:
        self.device.data_saver_mode = not self.device.data_saver_mode
        return self.device.data_saver_mode

    @tool(mutates=True)
    def toggle_data_saver_mode(self) -> str:
        return self._bar(f"Data Saver Mode is now {_on(self._toggle_data_saver())}.")

    def turn_data_saver_mode_on(self) -> str:
        self._set_by_toggle(self._toggle_data_saver, True)
        return "Data Saver Mode is now ON."

    def turn_data_saver_mode_off(self) -> str:
        self._set_by_toggle(self._toggle_data_saver, False)
        return "Data Saver Mode is now OFF."

    @tool(mutates=True)
    def set_apn_settings(self, apn_settings: Any) -> str:
        settings = APNSettings(**apn_settings) if isinstance(apn_settings, dict) else apn_settings
        self.device.active_apn_settings = settings
        self.simulate_network_search()
        return self._bar(f"APN settings set to: {settings.apn_name.value}")

    @tool(mutates=True)
    def reset_apn_settings(self) -> str:
        self.device.active_apn_settings.reset_at_reboot = True
        self.simulate_network_search()
        return self._bar("APN settings will reset at reboot.")

    def break_apn_settings(self) -> str:
        self.device.active_apn_settings.apn_name = APNNames.BROKEN
        self.simulate_network_search()
        return "APN settings broken. Please call reset_apn_settings() to fix."

    def break_apn_mms_setting(self) -> str:
        self.device.active_apn_settings.mmsc_url = None
        return "APN MMS setting broken. Please call reset_apn_settings() to fix."

    @tool(mutates=True)
    def toggle_wifi(self) -> str:
        d = self.device
        if d.airplane_mode:
            return self._bar("Cannot change Wi-Fi settings while Airplane Mode is ON.")
        d.wifi_enabled = not d.wifi_enabled
        if not d.wifi_enabled:
            d.wifi_connected = False
            d.wifi_ssid = None
            d.wifi_signal_strength = SignalStrength.NONE
        return self._bar(f"Wi-Fi is now {_on(d.wifi_enabled)}.")

    @tool(mutates=True)
    def toggle_wifi_calling(self) -> str:
        self.device.wifi_calling_enabled = not self.device.wifi_calling_enabled
        return self._bar(f"Wi-Fi Calling is now {_on(self.device.wifi_calling_enabled)}.")

    def set_wifi_calling(self, enabled: bool, mms_over_wifi: bool | None = None) -> str:
        self.device.wifi_calling_enabled = enabled
        text = f"Wi-Fi Calling is now {_on(enabled)}."
        if mms_over_wifi is not None:
            self.device.wifi_calling_mms_over_wifi = mms_over_wifi
            text += f"\nMMS over Wi-Fi is now {_on(mms_over_wifi)}."
        return text

    @tool(mutates=True)
    def connect_vpn(self) -> str:
        if self.device.vpn_connected:
            return "VPN already connected."
        self.device.vpn_connected = True
        self.device.vpn_details = _vpn_default()
        return self._bar("VPN connected successfully.")

    def _disconnect_vpn(self) -> bool:
        if not self.device.vpn_connected:
            return False
        self.device.vpn_connected = False
        self.device.vpn_details = None
        return True

    @tool(mutates=True)
    def disconnect_vpn(self) -> str:
        done = self._disconnect_vpn()
        text = (
            "VPN disconnected successfully." if done else "No active VPN connection to disconnect."
        )
        return self._bar(text)

    def break_vpn(self) -> str:
        self.connect_vpn()
        if self.device.vpn_details is not None:
            self.device.vpn_details.server_performance = PerformanceLevel.POOR
        return "VPN connection broken."

    @tool(mutates=True)
    def grant_app_permission(self, app_name: str, permission: str) -> str:
        app = self.device.app_statuses.get(app_name)
        permission = permission.lower()
        if not app:
            return self._bar(f"Error. App '{app_name}' not found. Cannot grant permission.")
        available = list(app.permissions.model_dump())
        if permission not in available:
            return self._bar(
                f"Error. Permission '{permission}' not tracked for app '{app_name}', "
                f"available permissions: {available}"
            )
        setattr(app.permissions, permission, True)
        return self._bar(f"Success. Permission '{permission}' granted to app '{app_name}'.")

    def remove_app_permission(self, app_name: str, permission: str) -> tuple[bool, str]:
        app = self.device.app_statuses.get(app_name)
        permission = permission.lower()
        if not app:
            return False, f"App '{app_name}' not found. Cannot remove permission."
        if not hasattr(app.permissions, permission):
            return False, f"Permission '{permission}' not tracked for app '{app_name}'."
        setattr(app.permissions, permission, False)
        return True, f"Permission '{permission}' removed from app '{app_name}'."

    @tool(mutates=True)
    def reboot_device(self) -> str:
        lines = []
        if self.device.active_apn_settings.reset_at_reboot:
            lines.append("Resetting APN settings...")
            self.device.active_apn_settings = APNSettings()
        lines.append("Restarting network services...")
        self.device.network_connection_status = NetworkStatus.SEARCHING
        self.simulate_network_search()
        return self._bar("\n".join(lines))

    @tool(mutates=True)
    def make_payment(self) -> str:
        request = self.surroundings.payment_request
        if request is None:
            return "You do not have a payment request."
        request.paid = True
        return f"Payment of {request.amount_due} USD has been made for bill {request.bill_id}."

    # task helpers --------------------------------------------------------------------------
    def set_user_info(self, name: str, phone_number: str) -> None:
        self.surroundings.name = name
        self.surroundings.phone_number = phone_number

    def set_user_location(self, abroad: bool) -> None:
        self.surroundings.is_abroad = abroad

    def assert_airplane_mode_status(self, expected_status: bool) -> bool:
        return self.device.airplane_mode == expected_status

    def assert_service_status(self, expected_status: str) -> bool:
        return self.device.network_connection_status == NetworkStatus(expected_status)

    def assert_mobile_data_status(self, expected_status: bool) -> bool:
        return phone.mobile_data_working(self.device, self.surroundings) == expected_status

    def assert_mobile_roaming_status(self, expected_status: bool) -> bool:
        return self.device.roaming_enabled == expected_status

    def assert_mobile_data_saver_mode_status(self, expected_status: bool) -> bool:
        return self.device.data_saver_mode == expected_status

    def assert_internet_speed(
        self, expected_speed: float, expected_desc: str | None = None
    ) -> bool:
        speed, label = phone.speed_test(self.device, self.surroundings)
        fast = (speed or 0.0) >= expected_speed
        if expected_desc is None:
            return fast
        return fast and (label or "").lower() == expected_desc.lower()

    def assert_internet_not_excellent(self) -> bool:
        _, label = phone.speed_test(self.device, self.surroundings)
        return (label or "").lower() != "excellent"

    def assert_can_send_mms(self, expected_status: bool) -> bool:
        return phone.can_send_mms(self.device, self.surroundings) == expected_status

    def assert_mobile_data_usage_exceeded(self, expected_status: bool) -> bool:
        return self.surroundings.mobile_data_usage_exceeded == expected_status
