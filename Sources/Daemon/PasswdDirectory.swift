import NIOPosix
import Services

#if canImport(Glibc)
import Glibc
#endif

/// Login names from the system's user database (`getpwuid_r`), looked up on a thread pool since
/// NSS may ask a remote directory.
struct PasswdDirectory: UnixAccountDirectory {
    let threadPool: NIOThreadPool

    func loginName(uid: UInt32) async -> String? {
        try? await threadPool.runIfActive { Self.lookup(uid: uid) }
    }

    static func lookup(uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        let status = getpwuid_r(uid_t(uid), &entry, &buffer, buffer.count, &result)
        guard status == 0, result != nil, let name = entry.pw_name else { return nil }
        return String(cString: name)
    }
}
