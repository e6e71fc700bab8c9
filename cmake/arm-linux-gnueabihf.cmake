# Cross build of libbetanet for arm-linux-gnueabihf with Debian's cross compiler (gcc-arm-linux-gnueabihf) and
# libsodium (+ the Python headers the Cython C includes) from Debian's multiarch packages:
#   make cross-deps     # the apt steps (dpkg --add-architecture, cross gcc, qemu-user)
#   cmake -S . -B build/cross-arm-linux-gnueabihf -DCMAKE_TOOLCHAIN_FILE=cmake/arm-linux-gnueabihf.cmake
# Nothing in the library links Python: the same --no-undefined guard as on x86 checks it.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(BETANET_TRIPLET arm-linux-gnueabihf)
set(BETANET_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
