"""TLS after Mozilla's "intermediate" profile, checked by sslyze; the generated
certificate meets the profile too (ECDSA P-256, 90 days)."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sslyze import Scanner, ServerNetworkLocation, ServerScanRequest, ServerScanStatusEnum
from sslyze.mozilla_tls_profile.tls_config_checker import (
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)


@pytest.fixture(scope="module")
def scan(stack):
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(server_location=ServerNetworkLocation("127.0.0.1", 443))])
    (result,) = scanner.get_results()
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    return result


def test_mozilla_intermediate_profile(scan):
    profile = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    try:
        check_server_against_tls_configuration(server_scan_result=scan, tls_config_to_check_against=profile)
        issues = {}
    except ServerNotCompliantWithTlsConfiguration as error:
        issues = error.issues
    # A self-signed certificate cannot chain to a public root; with your own
    # certificate in nginx/certs/ that check passes too. Nothing else may fail.
    assert set(issues) <= {"certificate_path_validation"}, issues


def test_tls_1_0_and_1_1_are_refused(scan):
    for name in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites", "tls_1_1_cipher_suites"):
        attempt = getattr(scan.scan_result, name)
        assert attempt.result is not None, name
        assert attempt.result.accepted_cipher_suites == [], name
    assert scan.scan_result.tls_1_3_cipher_suites.result.accepted_cipher_suites


def test_generated_certificate_fits_the_profile(ca_file):
    with open(ca_file, "rb") as pem:
        cert = x509.load_pem_x509_certificate(pem.read())
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=90), lifetime
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
