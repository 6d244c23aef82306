"""ReplicationSettingData and setting_data_text (the text the C ABI takes as setting data)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

import vmrepl
from vmrepl import ReplicationSettingData, setting_data_text

# Spec §3 (Msvm_ReplicationSettingData), plus its key and the VSSD identity members.
SPEC_PROPERTIES = [
    "InstanceID", "ElementName", "VirtualSystemIdentifier", "VirtualSystemType",
    "AuthenticationType", "CertificateThumbPrint", "RootCertificateThumbPrint",
    "CompressionEnabled", "BypassProxyServer", "RecoveryConnectionPoint", "RecoveryHostSystem",
    "PrimaryConnectionPoint", "PrimaryHostSystem", "RecoveryServerPortNumber",
    "ReplicateHostKvpItems", "ApplicationConsistentSnapshotInterval", "RecoveryHistory",
    "IncludedDisks", "AutoResynchronizeEnabled", "AutoResynchronizeIntervalStart",
    "AutoResynchronizeIntervalEnd", "EnableWriteOrderPreservationAcrossDisks",
    "ReplicationInterval", "ReplicationProvider", "AdditionalSettings",
]  # fmt: skip

# Spec §11's constructed example.
SPEC_XML = r"""<INSTANCE CLASSNAME="Msvm_ReplicationSettingData">
<PROPERTY NAME="InstanceID" TYPE="string"><VALUE>Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\HVR\0</VALUE></PROPERTY>
<PROPERTY NAME="VirtualSystemIdentifier" TYPE="string"><VALUE>3F2504E0-4F89-11D3-9A0C-0305E82C3301</VALUE></PROPERTY>
<PROPERTY NAME="AuthenticationType" TYPE="uint16"><VALUE>1</VALUE></PROPERTY>
<PROPERTY NAME="CertificateThumbPrint" TYPE="string"></PROPERTY>
<PROPERTY NAME="CompressionEnabled" TYPE="boolean"><VALUE>TRUE</VALUE></PROPERTY>
<PROPERTY NAME="PrimaryConnectionPoint" TYPE="string"><VALUE>hv-a.contoso.com</VALUE></PROPERTY>
<PROPERTY NAME="RecoveryConnectionPoint" TYPE="string"><VALUE>hv-b.contoso.com</VALUE></PROPERTY>
<PROPERTY NAME="RecoveryServerPortNumber" TYPE="uint16"><VALUE>80</VALUE></PROPERTY>
<PROPERTY NAME="RecoveryHistory" TYPE="uint16"><VALUE>24</VALUE></PROPERTY>
<PROPERTY NAME="ApplicationConsistentSnapshotInterval" TYPE="uint16"><VALUE>4</VALUE></PROPERTY>
<PROPERTY NAME="ReplicationInterval" TYPE="uint16"><VALUE>300</VALUE></PROPERTY>
<PROPERTY.ARRAY NAME="IncludedDisks" TYPE="string"><VALUE.ARRAY><VALUE>\\HV-A\root\virtualization\v2:Msvm_StorageAllocationSettingData.InstanceID="Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\0\\D"</VALUE></VALUE.ARRAY></PROPERTY.ARRAY>
<PROPERTY NAME="AutoResynchronizeIntervalStart" TYPE="datetime"><VALUE>00000000183000.000000:000</VALUE></PROPERTY>
<PROPERTY NAME="__PATH" TYPE="string" CLASSORIGIN="___SYSTEM"><VALUE>ignored</VALUE></PROPERTY>
</INSTANCE>"""


def test_every_property_of_the_spec_none_means_not_set() -> None:
    names = [f.name for f in dataclasses.fields(ReplicationSettingData)]
    assert names == SPEC_PROPERTIES
    empty = ReplicationSettingData()
    assert all(getattr(empty, n) is None for n in names)
    assert empty.to_dict() == {}
    assert json.loads(empty.to_json()) == {"__CLASS": "Msvm_ReplicationSettingData"}


def test_to_dict_and_to_json() -> None:
    s = ReplicationSettingData(
        RecoveryConnectionPoint="hv-b",
        RecoveryServerPortNumber=8443,
        AuthenticationType=vmrepl.AuthenticationType.Kerberos,
        ReplicationInterval=30,
        RecoveryHistory=4,
        CompressionEnabled=True,
        ReplicateHostKvpItems=False,
        IncludedDisks=("disk0", "disk1"),  # type: ignore[arg-type]
        AutoResynchronizeIntervalStart=dt.time(18, 30),
        AutoResynchronizeIntervalEnd=dt.timedelta(hours=6),
    )
    d = s.to_dict()
    assert d == {
        "AuthenticationType": 1,
        "CompressionEnabled": True,
        "RecoveryConnectionPoint": "hv-b",
        "RecoveryServerPortNumber": 8443,
        "ReplicateHostKvpItems": False,
        "RecoveryHistory": 4,
        "IncludedDisks": ["disk0", "disk1"],
        "AutoResynchronizeIntervalStart": "00000000183000.000000:000",
        "AutoResynchronizeIntervalEnd": "00000000060000.000000:000",
        "ReplicationInterval": 30,
    }
    assert type(d["AuthenticationType"]) is int
    text = s.to_json()
    assert text.startswith('{"__CLASS": "Msvm_ReplicationSettingData"')
    assert ReplicationSettingData.from_json(text).to_dict() == d


def test_from_dict_ignores_system_and_unused_members_and_refuses_unknown() -> None:
    s = ReplicationSettingData.from_dict(
        {"__CLASS": "Msvm_ReplicationSettingData", "__PATH": "x", "Caption": "c", "Notes": [], "RecoveryHistory": 2}
    )
    assert s == ReplicationSettingData(RecoveryHistory=2)
    with pytest.raises(TypeError, match="ReplicationIntervall"):
        ReplicationSettingData.from_dict({"ReplicationIntervall": 30})
    with pytest.raises(ValueError, match="Msvm_ReplicationSettingData"):
        ReplicationSettingData.from_json('{"__CLASS": "Msvm_ReplicationServiceSettingData"}')
    with pytest.raises(ValueError):
        ReplicationSettingData.from_json("[1]")


def test_from_cim_xml_reads_the_spec_example() -> None:
    s = ReplicationSettingData.from_cim_xml(SPEC_XML)
    assert s.InstanceID == "Microsoft:3F2504E0-4F89-11D3-9A0C-0305E82C3301\\HVR\\0"
    assert s.AuthenticationType == 1 and s.CompressionEnabled is True
    assert s.CertificateThumbPrint is None  # a PROPERTY without VALUE is null
    assert s.RecoveryServerPortNumber == 80 and s.RecoveryHistory == 24 and s.ReplicationInterval == 300
    assert s.IncludedDisks and s.IncludedDisks[0].startswith("\\\\HV-A\\root")
    assert s.AutoResynchronizeIntervalStart == "00000000183000.000000:000"
    with pytest.raises(ValueError):
        ReplicationSettingData.from_cim_xml('<INSTANCE CLASSNAME="Msvm_ComputerSystem"></INSTANCE>')


def test_setting_data_text_from_everything(svc: vmrepl.Service) -> None:
    s = ReplicationSettingData(RecoveryConnectionPoint="hv-b", RecoveryServerPortNumber=80)
    assert setting_data_text(s) == s.to_json()
    assert json.loads(setting_data_text({"RecoveryHistory": vmrepl.ReplicationHealth.Ok})) == {"RecoveryHistory": 1}

    @dataclasses.dataclass
    class Mine:
        RecoveryHistory: int = 3
        CertificateThumbPrint: object = None

    assert json.loads(setting_data_text(Mine())) == {"RecoveryHistory": 3}
    # Text in any of the three forms passes through (the engine parses it).
    mof = 'instance of Msvm_ReplicationSettingData { RecoveryHistory = 2; };'
    assert setting_data_text("  " + mof + "\n") == mof
    assert setting_data_text(SPEC_XML) == SPEC_XML
    assert setting_data_text("\ufeff" + s.to_json()) == s.to_json()
    assert setting_data_text(SPEC_XML.encode("utf-8")) == SPEC_XML
    assert setting_data_text(b"\xef\xbb\xbf" + mof.encode()) == mof
    assert setting_data_text(SPEC_XML.encode("utf-16")) == SPEC_XML  # with a BOM
    assert setting_data_text(SPEC_XML.encode("utf-16-le")) == SPEC_XML  # CimSerializer's bytes
    # An Instance read from the engine becomes its JSON.
    info = svc.info()
    assert setting_data_text(info) == info.to_json()
    with pytest.raises(ValueError):
        setting_data_text("   ")
    with pytest.raises(TypeError):
        setting_data_text(42)


def test_server_side_setting_data_classes_of_spec_4() -> None:
    svc_fields = [f.name for f in dataclasses.fields(vmrepl.ReplicationServiceSettingData)]
    assert svc_fields == [
        "InstanceID", "ElementName", "RecoveryServerEnabled", "AllowedAuthenticationType",
        "CertificateThumbPrint", "HttpPort", "HttpsPort", "MonitoringInterval", "MonitoringStartTime",
    ]  # fmt: skip
    auth_fields = [f.name for f in dataclasses.fields(vmrepl.AuthorizationSettingData)]
    assert auth_fields == ["InstanceID", "ElementName", "AllowedPrimaryHostSystem", "TrustGroup", "ReplicaStorageLocation"]
    s = vmrepl.ReplicationServiceSettingData(RecoveryServerEnabled=True, MonitoringStartTime=dt.time(9, 0))
    assert json.loads(s.to_json()) == {
        "__CLASS": "Msvm_ReplicationServiceSettingData",
        "RecoveryServerEnabled": True,
        "MonitoringStartTime": "00000000090000.000000+000",  # a time of day, not an interval
    }
    assert setting_data_text(s) == s.to_json()
    cet = dt.timezone(dt.timedelta(hours=1))
    assert s.replace(MonitoringStartTime=dt.time(10, 0, tzinfo=cet)).to_dict()["MonitoringStartTime"] == (
        "00000000100000.000000+060"
    )
    assert s.replace(HttpPort=8080, RecoveryServerEnabled=None).to_dict() == {
        "HttpPort": 8080,
        "MonitoringStartTime": "00000000090000.000000+000",
    }
    with pytest.raises(TypeError, match="Msvm_ReplicationServiceSettingData has no property Port"):
        s.replace(Port=1)
    e = vmrepl.AuthorizationSettingData(AllowedPrimaryHostSystem="*", TrustGroup="DEFAULT", ReplicaStorageLocation="/r")
    assert vmrepl.AuthorizationSettingData.from_json(e.to_json()) == e
    assert json.loads(setting_data_text(e))["__CLASS"] == "Msvm_ReplicationAuthorizationSettingData"
    xml = (
        '<INSTANCE CLASSNAME="Msvm_ReplicationAuthorizationSettingData">'
        '<PROPERTY NAME="AllowedPrimaryHostSystem" TYPE="string"><VALUE>*</VALUE></PROPERTY>'
        '<PROPERTY NAME="TrustGroup" TYPE="string"><VALUE>DEFAULT</VALUE></PROPERTY>'
        '<PROPERTY NAME="ReplicaStorageLocation" TYPE="string"><VALUE>/r</VALUE></PROPERTY>'
        '<PROPERTY NAME="Caption" TYPE="string"><VALUE>ignored</VALUE></PROPERTY></INSTANCE>'
    )
    assert vmrepl.AuthorizationSettingData.from_cim_xml(xml) == e
    with pytest.raises(ValueError, match="Msvm_ReplicationAuthorizationSettingData"):
        vmrepl.AuthorizationSettingData.from_json(vmrepl.ReplicationSettingData().to_json())
    with pytest.raises(TypeError, match="TrustGroupp"):
        vmrepl.AuthorizationSettingData.from_dict({"TrustGroupp": "x"})
    assert isinstance(e, vmrepl.SettingData) and isinstance(vmrepl.ReplicationSettingData(), vmrepl.SettingData)


def test_engine_settings_round_trip_through_the_dataclasses(svc: vmrepl.Service) -> None:
    current = vmrepl.ReplicationServiceSettingData.from_dict(svc.get_service_settings())
    assert current.HttpPort == 80 and current.RecoveryServerEnabled is False
    svc.modify_service_settings(current.replace(HttpsPort=8443, MonitoringStartTime=dt.time(10, 30))).wait()
    s = svc.get_service_settings()
    assert (s.HttpsPort, s.MonitoringStartTime) == (8443, "00000000103000.000000+000")
