// Built only with QKV_PORTABLE on glibc (CMakeLists.txt): what makes a binary linked on this
// machine's glibc (2.36) with a static libstdc++ and libgcc load on glibc 2.28.
//
// Linking the C++ runtime in brings in its references to three kinds of glibc symbols newer than 2.28:
//   - __libc_single_threaded (2.32), a variable libstdc++ reads to skip atomic reference counts;
//   - pthread_create and the other functions glibc 2.34 moved from libpthread into libc, which gave
//     them a new default version (GLIBC_2.34) that the linker picks;
//   - _dl_find_object (2.35), which libgcc's unwinder calls to find a frame's unwind tables.
// The linker redirects libstdc++'s and libgcc's references to the functions here (-Wl,--wrap=NAME
// makes NAME resolve to __wrap_NAME), which call the old versions; the variable is defined here.
// native/exports.map keeps all of it local to the addon.
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__GLIBC__)

#if defined(__x86_64__)
#define QKV_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define QKV_GLIBC_BASE "GLIBC_2.17"
#else
#error "glibc_compat.cc: the first glibc symbol version of this architecture is not known"
#endif

#if __has_include(<sys/single_threaded.h>)
// Stays 0 ("more than one thread may run"), so libstdc++ always takes the atomic path: correct in
// every process, and Node always runs several threads anyway.
extern "C" {
char __libc_single_threaded = 0;
}
#endif

// Each old_NAME is a reference to NAME at the architecture's first glibc version, which every glibc
// since has kept: in libpthread.so.0 up to 2.33 (Node links it, so it is loaded), in libc from 2.34.
#define QKV_PIN(name) __asm__(".symver old_" #name "," #name "@" QKV_GLIBC_BASE)

extern "C" {
int old_pthread_create(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
int old_pthread_join(pthread_t, void**);
int old_pthread_detach(pthread_t);
int old_pthread_once(pthread_once_t*, void (*)());
int old_pthread_key_create(pthread_key_t*, void (*)(void*));
int old___pthread_key_create(pthread_key_t*, void (*)(void*));
int old_pthread_key_delete(pthread_key_t);
void* old_pthread_getspecific(pthread_key_t);
int old_pthread_setspecific(pthread_key_t, const void*);
}
QKV_PIN(pthread_create);
QKV_PIN(pthread_join);
QKV_PIN(pthread_detach);
QKV_PIN(pthread_once);
QKV_PIN(pthread_key_create);
QKV_PIN(__pthread_key_create);
QKV_PIN(pthread_key_delete);
QKV_PIN(pthread_getspecific);
QKV_PIN(pthread_setspecific);

extern "C" {
int __wrap_pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  return old_pthread_create(thread, attr, start, arg);
}
int __wrap_pthread_join(pthread_t thread, void** result) { return old_pthread_join(thread, result); }
int __wrap_pthread_detach(pthread_t thread) { return old_pthread_detach(thread); }
int __wrap_pthread_once(pthread_once_t* once, void (*init)()) { return old_pthread_once(once, init); }
int __wrap_pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) {
  return old_pthread_key_create(key, destructor);
}
int __wrap___pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) {
  return old___pthread_key_create(key, destructor);
}
int __wrap_pthread_key_delete(pthread_key_t key) { return old_pthread_key_delete(key); }
void* __wrap_pthread_getspecific(pthread_key_t key) { return old_pthread_getspecific(key); }
int __wrap_pthread_setspecific(pthread_key_t key, const void* value) { return old_pthread_setspecific(key, value); }
}

// _dl_find_object has no older version to pin. What the unwinder needs from it (the mapping that
// holds an address and its PT_GNU_EH_FRAME segment) comes from dl_iterate_phdr instead, as it did
// before GCC 12. Only the unwinder calls it, while an exception is being thrown.
#if DLFO_STRUCT_HAS_EH_DBASE || DLFO_STRUCT_HAS_EH_COUNT
#error "glibc_compat.cc: this architecture's dl_find_object has fields the replacement does not fill"
#endif

namespace {

struct ObjectSearch {
  uintptr_t address;
  dl_find_object* result;
};

int FindObjectOf(dl_phdr_info* info, size_t size, void* data) {
  // dl_phdr_info has grown over glibc releases: use nothing past dlpi_phnum, and only if it is there.
  if (size < offsetof(dl_phdr_info, dlpi_phnum) + sizeof(info->dlpi_phnum) || info->dlpi_phdr == nullptr) return 0;
  auto* search = static_cast<ObjectSearch*>(data);
  uintptr_t map_start = UINTPTR_MAX;
  uintptr_t map_end = 0;
  bool contains = false;
  void* eh_frame = nullptr;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    const uintptr_t start = info->dlpi_addr + segment.p_vaddr;
    if (segment.p_type == PT_LOAD) {
      const uintptr_t end = start + segment.p_memsz;
      if (start < map_start) map_start = start;
      if (end > map_end) map_end = end;
      if (search->address >= start && search->address < end) contains = true;
    } else if (segment.p_type == PT_GNU_EH_FRAME) {
      eh_frame = reinterpret_cast<void*>(start);
    }
  }
  if (!contains) return 0;
  std::memset(search->result, 0, sizeof(*search->result));
  search->result->dlfo_map_start = reinterpret_cast<void*>(map_start);
  search->result->dlfo_map_end = reinterpret_cast<void*>(map_end);
  search->result->dlfo_eh_frame = eh_frame;
  return 1;  // found: stop iterating
}

}  // namespace

extern "C" int __wrap__dl_find_object(void* address, dl_find_object* result) {
  ObjectSearch search{reinterpret_cast<uintptr_t>(address), result};
  return dl_iterate_phdr(FindObjectOf, &search) != 0 ? 0 : -1;
}

#endif  // __GLIBC__
