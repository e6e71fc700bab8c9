# Cross build of libbetanet for aarch64-linux-gnu with Debian's cross compiler (gcc-aarch64-linux-gnu) and
# libsodium (+ the Python headers the Cython C includes) from Debian's multiarch packages:
#   make cross-deps     # the apt steps (dpkg --add-architecture, cross gcc, qemu-user)
#   cmake -S . -B build/cross-aarch64-linux-gnu -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# Nothing in the library links Python: the same --no-undefined guard as on x86 checks it.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(BETANET_TRIPLET aarch64-linux-gnu)
set(BETANET_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
