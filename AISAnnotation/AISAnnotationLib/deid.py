"""De-identification of JSON sidecars (consensus R6).

Keys that identify a person, an institution, a device or a date, as exported by
dcm2niix or scanner tools. Removed from every sidecar the project writes.
"""

from __future__ import annotations

from typing import Any

IDENTIFYING_JSON_KEYS = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "PatientWeight", "PatientSize", "PatientAddress", "OtherPatientIDs",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "StationName", "DeviceSerialNumber", "AccessionNumber", "StudyID",
    "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "StudyTime",
    "AcquisitionDateTime", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
    "FrameOfReferenceUID", "ImagePositionPatient_PHI",
    # added with the DICOM importer (PS3.15 Table E.1-1 person/institution attributes dcm2niix or
    # scanner tools may export under their DICOM keyword)
    "PatientBirthTime", "OtherPatientNames", "PatientMotherBirthName", "IssuerOfPatientID",
    "PatientTelephoneNumbers", "PatientComments", "EthnicGroup", "Occupation", "MilitaryRank",
    "CountryOfResidence", "RegionOfResidence", "ResponsiblePerson", "MedicalRecordLocator",
    "PhysiciansOfRecord", "RequestingPhysician", "NameOfPhysiciansReadingStudy",
    "AdmittingDiagnosesDescription", "InstanceCreationDate", "PerformedProcedureStepStartDate",
    "InstitutionCodeSequence", "ReferringPhysicianAddress",
})


def scrub_sidecar(meta: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``meta`` without identifying keys (see :data:`IDENTIFYING_JSON_KEYS`)."""
    return {k: v for k, v in meta.items() if k not in IDENTIFYING_JSON_KEYS}
