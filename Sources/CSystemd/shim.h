// libsystemd for Swift: sd_notify, socket activation and the watchdog. The variadic functions
// (sd_notifyf, sd_journal_send) are not callable from Swift; the non-variadic ones are enough.
#include <systemd/sd-daemon.h>
#include <sys/socket.h>
