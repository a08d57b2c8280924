// Control: the same command compiles a correct Pool program, so a refusal above is the
// static_assert's doing, not a broken command.
#include <mproc/mproc.hpp>

int main() {
    mproc::Pool pool(1);
    return pool.apply([](int x, int factor) { return x * factor; }, 2, 3) == 6 ? 0 : 1;
}
