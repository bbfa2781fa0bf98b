// libsodium, for MoatVault only (random bytes, wiping, constant-time comparison).
#include <sodium.h>
