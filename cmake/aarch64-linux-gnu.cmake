# Cross build of libbetanet for aarch64-linux-gnu with Debian's cross compiler (gcc-aarch64-linux-gnu) and
# libsodium (+ the Python headers the Cython C includes) from Debian's multiarch packages:
#   make cross-deps     # the apt steps (dpkg --add-architecture, cross gcc, qemu-user)
#   cmake -S . -B build/cross-aarch64-linux-gnu -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# Nothing in the library links Python: the same --no-undefined guard as on x86 checks it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(BETANET_TRIPLET aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${BETANET_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${BETANET_TRIPLET}-g++)

# Libraries and headers of the target come from the multiarch directories, never the host's.
set(CMAKE_LIBRARY_ARCHITECTURE ${BETANET_TRIPLET})
set(CMAKE_FIND_ROOT_PATH /usr/${BETANET_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${BETANET_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Target programs (tests, examples) run under qemu-user: make test-cross.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/${BETANET_TRIPLET})
