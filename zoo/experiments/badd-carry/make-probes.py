#!/usr/bin/env python3
"""The carry-chain probes of 2026-11-29 (fifth session), written exactly as they were made.

A carry chain at size k: a has 1s from bit j to bit k-1 and 0s below; b has random bits below j and a 1 at bit j.
The sum's only carry starts at bit j and has to run to the top (k - j positions), past random low bits.
The bar's one failure (badd-bar.yaml, 100x, carry #7: j = 361) was such a chain; these probes are other chains
at size 1,000 (50x), where a grading takes about 2 s a sum, and were used to choose the sharpening factor.

  usage: make-probes.py BAR_SAMPLE_TXT     (BAR_SAMPLE_TXT: the output of
         toolchain sample badd -k 2000 --suite zoo/suites/badd-bar.yaml --level 100x --family carry --index 7 -n 1)
Writes carry7.yaml, probe1.yaml (diagnosis: they reuse the bar example's low bits), probe2.yaml and probe3.yaml
(chosen on: no bar bits). Python's random.Random(seed) gives the same bits on every machine."""
import random
import sys


def write(path, name, description, cases):
    lines = [f"name: {name}", f'description: "{description}"', "seed: 1",
             "levels:", "  - {size: 4, samples: {random: 1}}", "cases:"]
    for case_name, k, a, b in cases:
        lines.append(f'  - name: {case_name}\n    task: badd\n    notation: task\n'
                     f'    operands: ["{a[::-1]}", "{b[::-1]}"]\n    size: {k}')
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def chain(k, j, low):
    """(a, b) as bit strings, least significant bit first."""
    a = ["0"] * k
    b = ["0"] * k
    for i in range(j, k):
        a[i] = "1"
    for i in range(j):
        b[i] = low[i]
    b[j] = "1"
    return "".join(a), "".join(b)


def main():
    sample = open(sys.argv[1]).read().split("\n")
    bar_input = sample[2].split(": ")[1]
    bar_a, bar_b = bar_input[:2000], bar_input[2001:]

    # the bar's carry #7 cut to smaller sizes: does the failure depend on the tape's length?
    write("carry7.yaml", "carry7", "the bar's carry #7 cut to sizes 400 to 2000",
          [(f"c7-{k}", k, bar_a[:k], bar_b[:k]) for k in [400, 450, 500, 700, 1000, 1500, 2000]])

    # probe 1 (diagnosis): chain starts j, low bits zero (z), the bar example's (b7), or random (r)
    rng = random.Random(7)
    cases = []
    for j in [0, 10, 50, 100, 200, 300, 361, 400, 450, 500]:
        cases.append((f"z{j}", 1000, *chain(1000, j, "0" * 1000)))
        cases.append((f"b7-{j}", 1000, *chain(1000, j, bar_b)))
        cases.append((f"r{j}", 1000, *chain(1000, j, "".join(rng.choice("01") for _ in range(1000)))))
    write("probe1.yaml", "carryprobe", "carry chains at size 1000", cases)

    # probe 2: 24 chains, j from 250 to 500
    rng = random.Random(20261129)
    cases = []
    for i in range(24):
        j = rng.randint(250, 500)
        cases.append((f"r{i}-j{j}", 1000, *chain(1000, j, "".join(rng.choice("01") for _ in range(j)))))
    write("probe2.yaml", "carryprobe2", "24 carry chains with random low digits at size 1000, j from 250 to 500", cases)

    # probe 3: probe 1's random chains with j of 300 or more, and 30 more with j from 280 to 500
    rng7 = random.Random(7)
    cases = []
    for j in [0, 10, 50, 100, 200, 300, 361, 400, 450, 500]:
        low = "".join(rng7.choice("01") for _ in range(1000))
        if j >= 300:
            cases.append((f"p1r{j}", 1000, *chain(1000, j, low)))
    rng3 = random.Random(3)
    for i in range(30):
        j = rng3.randint(280, 500)
        cases.append((f"q{i}-j{j}", 1000, *chain(1000, j, "".join(rng3.choice("01") for _ in range(1000)))))
    write("probe3.yaml", "carryprobe3",
          "carry chains with random low digits at size 1000, probe 1 r cases with j of 300 or more and 30 more", cases)


if __name__ == "__main__":
    main()
