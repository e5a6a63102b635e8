/**
 * The simulator's TLS certificate and key, embedded so that the compiled binary carries them.
 * They are the test material of `fixtures/tls/` (see fixtures/tls/README.md for how they were
 * made): public, protecting nothing, and never to be used for a real service.
 *
 * @module
 */

/** Self-signed certificate (CN=ess-test-device, P-256), like the device's matching no host. */
export const SIM_CERT = `
-----BEGIN CERTIFICATE-----
MIIBzDCCAXGgAwIBAgIUdjcYzADuA7d5rn3JEZsijftnKV4wCgYIKoZIzj0EAwIw
OjELMAkGA1UEBhMCS1IxETAPBgNVBAoMCGVzcyB0ZXN0MRgwFgYDVQQDDA9lc3Mt
dGVzdC1kZXZpY2UwIBcNMjYxMTI2MDEyMTQ1WhgPMjEyNjExMDIwMTIxNDVaMDox
CzAJBgNVBAYTAktSMREwDwYDVQQKDAhlc3MgdGVzdDEYMBYGA1UEAwwPZXNzLXRl
c3QtZGV2aWNlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBUF8+TN9ht1I3eEw
a7A+zfgVyaZfyYnuy/M8QQ/mIpBTyV8D4+eX1mnJBiDwQg09V9FPxh3xzkVSYFec
ze80xKNTMFEwHQYDVR0OBBYEFDbdm67CjoKZlRvLAZDkyDRIcJYbMB8GA1UdIwQY
MBaAFDbdm67CjoKZlRvLAZDkyDRIcJYbMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZI
zj0EAwIDSQAwRgIhAPYT+SZ5OojulUYIcu3h+X9h16k5OvaiKGMT4GrZJ5YwAiEA
zQlM1xK4UD2Ghl4s2xmuTV06PjSmqFLjPlB+yNi0YYw=
-----END CERTIFICATE-----
`.trimStart();

/** The private key of {@link SIM_CERT}; test material only. */
export const SIM_KEY = `
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgk+R+bD0D+npDgDBT
oRRub69hGuH5FGhBoRlyu4SKqsShRANCAAQFQXz5M32G3Ujd4TBrsD7N+BXJpl/J
ie7L8zxBD+YikFPJXwPj55fWackGIPBCDT1X0U/GHfHORVJgV5zN7zTE
-----END PRIVATE KEY-----
`.trimStart();
