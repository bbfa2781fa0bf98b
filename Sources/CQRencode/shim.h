// libqrencode, for MoatAuth only: the QR code of a TOTP enrolment URI.
#include <qrencode.h>
