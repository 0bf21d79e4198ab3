// libsystemd for Swift: sd_notify, socket activation, the watchdog and the journal. The variadic
// functions (sd_notifyf, sd_journal_send) are not callable from Swift; the non-variadic ones are
// enough.
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/socket.h>
#include <sys/uio.h>

// sd-journal.h turns sd_journal_sendv into a macro that adds the C caller's location; Swift
// cannot call macros, so this wrapper calls the function (agentd passes CODE_* itself).
static inline int csystemd_journal_sendv(const struct iovec *iov, int n) {
    return (sd_journal_sendv)(iov, n);
}
