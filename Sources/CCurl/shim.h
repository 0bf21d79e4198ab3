#ifndef AGENTD_CCURL_SHIM_H
#define AGENTD_CCURL_SHIM_H

// libcurl for Swift: curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic, which
// Swift cannot call, so each argument type gets a small typed wrapper.
#include <curl/curl.h>

typedef size_t (*ccurl_data_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);

static inline CURLcode ccurl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_str(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_ptr(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_write(CURL *h, ccurl_data_cb cb) { return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cb); }
static inline CURLcode ccurl_setopt_header(CURL *h, ccurl_data_cb cb) { return curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, cb); }

/// Sets a request body of `len` bytes, copied by libcurl (so the caller's buffer may go at once).
static inline CURLcode ccurl_setopt_body_copy(CURL *h, const void *bytes, curl_off_t len) {
    CURLcode rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, len);
    if (rc != CURLE_OK) return rc;
    if (len == 0 || bytes == NULL) return curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    return curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, bytes);
}

static inline CURLcode ccurl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode ccurl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }

static inline CURLMcode ccurl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

/// The easy handle and result of a CURLMSG_DONE message (the result sits in a union Swift reads awkwardly).
static inline CURL *ccurl_msg_done(CURLMsg *msg, CURLcode *result) {
    if (msg->msg != CURLMSG_DONE) return NULL;
    *result = msg->data.result;
    return msg->easy_handle;
}

static const size_t ccurl_writefunc_pause = CURL_WRITEFUNC_PAUSE;
static const int ccurl_pause_cont = CURLPAUSE_CONT;

#endif
