// libargon2 (the reference implementation), for MoatVault only: Argon2id with full RFC 9106 parameters.
#include <argon2.h>
