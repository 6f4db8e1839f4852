#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/): small valid inputs of every
kind each target reads, and a few near misses. Standard library only.

    python3 fuzz/make_seeds.py [path/to/a/run/dir]

The checkpoint seeds are the files of a small trained run (train one with
`backprop train --dataset xor --samples 100 --hidden 4 --epochs 2 --out DIR`); without the
argument only hand-made safetensors files are written.
"""
import gzip, json, os, struct, sys, zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- IDX -------------------------------------------------------------------------------
def idx(dims, body):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(body)


def gz(b):
    return gzip.compress(b, mtime=0)


put("idx", "matrix", idx([2, 3], range(6)))
put("idx", "labels", idx([5], [0, 1, 2, 9, 7]))
put("idx", "images", idx([2, 4, 4], [(i * 37) % 256 for i in range(32)]))
put("idx", "matrix.gz", gz(idx([2, 3], range(6))))
put("idx", "images.gz", gz(idx([2, 4, 4], [(i * 37) % 256 for i in range(32)])))
put("idx", "header-only", idx([0, 28, 28], []))
put("idx", "promises-more.gz", gz(idx([1000, 1000, 1000], [1, 2, 3])))
put("idx", "trailing", idx([2], [1, 2, 3]))

# --- CSV (first byte: options) ---------------------------------------------------------
csvs = {
    "numeric": "x1,x2,label\n0.5,1,a\n-1,0.25,b\n2,3,a\n1,1,b\n0,0,a\n4,4,b\n",
    "regression": "a,b,y\n1,2,3.5\n2,3,5.5\n3,4,7.5\n4,5,9.5\n5,6,11.5\n6,7,13.5\n",
    "categories": "color,size,label\nred,1,yes\nblue,2,no\nred,3,yes\ngreen,4,no\nblue,5,yes\nred,6,no\n",
    "missing": "x,y,label\n1,NA,a\n2,?,b\n,3,a\n4,5,b\n5,6,a\n6,7,b\n7,8,a\n",
    "quoted-crlf": "\"x, one\",x2,label\r\n\"1\",2,\"a\"\"b\"\r\n3,4,c\r\n5,6,a\"b\r\n7,8,c\r\n9,10,c\r\n",
    "no-header": "1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,10,0\n11,12,1\n",
    "huge-numbers": "x,y,label\n1e308,2,a\n-1e308,3,b\n1e-320,4,a\n0,5,b\n1,6,a\n2,7,b\n",
}
for i, (name, text) in enumerate(csvs.items()):
    put("csv", name, bytes([i * 37 % 256]) + text.encode())
iris = os.path.join(os.path.dirname(ROOT), "..", "data", "iris", "iris.csv")
if os.path.exists(iris):
    lines = open(iris).read().splitlines()
    put("csv", "iris-head", b"\x00" + ("\n".join(lines[:1] + lines[1:151:6]) + "\n").encode())

# --- model specs (first byte: even JSON, odd TOML) ---------------------------------------
specs = {
    "mlp": {"layers": [{"type": "linear", "out": 16}, {"type": "relu"}, {"type": "dropout", "p": 0.2},
                       {"type": "linear", "out": 10}]},
    "lenet": {"layers": [{"type": "conv2d", "out": 6, "kernel": 5, "padding": 2}, {"type": "relu"},
                         {"type": "max_pool2d", "kernel": 2}, {"type": "conv2d", "out": 16, "kernel": 5},
                         {"type": "tanh"}, {"type": "avg_pool2d", "kernel": 2}, {"type": "flatten"},
                         {"type": "linear", "out": 10}]},
    "cnn-bn": {"layers": [{"type": "conv2d", "out": 4, "kernel": 3, "padding": 1, "bias": False,
                           "init": "he_uniform"}, {"type": "batch_norm"}, {"type": "relu"},
                          {"type": "conv2d", "out": 4, "kernel": 3, "stride": 2, "dilation": 1, "groups": 2},
                          {"type": "global_avg_pool"}, {"type": "linear", "out": 3}]},
    "reshape": {"layers": [{"type": "reshape", "shape": [4, 7, 28]}, {"type": "flatten"},
                           {"type": "linear", "in": 784, "out": 2, "bias": True}]},
    "weights": {"layers": [{"type": "linear", "in": 2, "out": 2, "weight": [[1, 2], [3, 4]],
                            "bias_values": [0.5, -0.5]}, {"type": "sigmoid"}]},
    "maxout": {"layers": [{"type": "maxout", "out": 4, "pieces": 3}, {"type": "leaky_relu", "alpha": 0.1},
                          {"type": "linear", "out": 2}]},
    "lstm": {"layers": [{"type": "lstm", "hidden": 8}, {"type": "linear", "out": 10}]},
}
for name, s in specs.items():
    put("spec", name + ".json", b"\x00" + json.dumps(s).encode())


def toml(spec):
    out = []
    for l in spec["layers"]:
        out.append("[[layers]]")
        for k, v in l.items():
            out.append(f"{json.dumps(k)} = {json.dumps(v).replace('true', 'true').replace('false', 'false')}")
    return "\n".join(out) + "\n"


for name in ["mlp", "lenet", "reshape"]:
    put("spec", name + ".toml", b"\x01" + toml(specs[name]).encode())
put("spec", "overflow.json", b"\x00" + b'{"layers": [{"type": "reshape", "shape": [4294967296, 4294967296, 1]}, {"type": "linear", "out": 2}]}')

# the structured target reads raw bytes through `arbitrary`: a few byte strings of each length
for n in [8, 32, 128]:
    put("spec_structured", f"bytes-{n}", bytes((i * 73 + 11) % 256 for i in range(n)))


# --- safetensors checkpoints -------------------------------------------------------------
def fnv_digest(tensors):
    h = 0xCBF29CE484222325
    def eat(b):
        nonlocal h
        for x in b:
            h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    for name in sorted(tensors):
        shape, vals = tensors[name]
        eat(name.encode())
        for d in shape:
            eat(struct.pack("<Q", d))
        for v in vals:
            eat(struct.pack("<f", v))
    return f"{h:016x}"


def safetensors(tensors, metadata, checksum=True):
    header, blobs, off = {}, [], 0
    for name, (shape, vals) in tensors.items():
        b = b"".join(struct.pack("<f", v) for v in vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    meta = dict(metadata)
    if checksum:
        meta["backprop.checksum"] = fnv_digest(tensors)
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


tiny = {"fc1.weight": ([2, 2], [0.5, -1.0, 0.25, 2.0]), "fc1.bias": ([2], [0.0, 0.1])}
tiny_meta = {
    "backprop.spec": json.dumps({"layers": [{"type": "linear", "out": 2}]}),
    "backprop.inputs": "2",
    "backprop.classes": json.dumps(["a", "b"]),
    "backprop.normalization": json.dumps({"encoding": "grey"}),
}
put("checkpoint", "tiny-model", safetensors(tiny, tiny_meta))
put("checkpoint", "tiny-no-checksum", safetensors(tiny, tiny_meta, checksum=False))
put("checkpoint", "no-metadata", safetensors(tiny, {}, checksum=False))
put("checkpoint", "empty", safetensors({}, {}, checksum=False))


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = b[8 + n:]
    tensors = {}
    for name, info in header.items():
        a, e = info["data_offsets"]
        vals = [x[0] for x in struct.iter_unpack("<f", data[a:e])]
        tensors[name] = (info["shape"], vals)
    return tensors, meta


if len(sys.argv) > 1:
    run = sys.argv[1]
    model = os.path.join(run, "model.safetensors")
    training = os.path.join(run, "model.training.safetensors")
    put("checkpoint", "trained-model", open(model, "rb").read())
    put("checkpoint", "trained-training", open(training, "rb").read())
    # the single-file layout of older checkpoints: weights, optimizer state and training
    # metadata together, which --resume still reads
    t1, m1 = read_safetensors(model)
    t2, m2 = read_safetensors(training)
    for m in (m1, m2):
        m.pop("backprop.checksum", None)
    m2.pop("backprop.model_digest", None)
    put("checkpoint", "trained-single-file", safetensors({**t1, **t2}, {**m1, **m2}))


# --- images --------------------------------------------------------------------------------
def png(w, h, color_type, depth, rows, palette=None):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", palette)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def digit_rows(w, h, ink, bg):
    rows = []
    for y in range(h):
        r = bytearray([bg] * w)
        for x in range(w):
            if (w // 2 - 2 <= x <= w // 2 + 1 and 4 <= y < h - 4) or (x % 30 == 5 and 6 <= y < h - 6):
                r[x] = ink
        rows.append(bytes(r))
    return rows


put("image", "grey-28.png", png(28, 28, 0, 8, digit_rows(28, 28, 255, 0)))
put("image", "dark-on-light-60x28.png", png(60, 28, 0, 8, digit_rows(60, 28, 0, 255)))
put("image", "rgb.png", png(3, 2, 2, 8, [bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])] * 2))
put("image", "rgba.png", png(2, 2, 6, 8, [bytes([10, 20, 30, 128, 200, 200, 200, 255])] * 2))
put("image", "grey-alpha.png", png(2, 1, 4, 8, [bytes([255, 0, 128, 255])]))
put("image", "grey16.png", png(2, 2, 0, 16, [bytes([0, 1, 255, 255])] * 2))
put("image", "grey1.png", png(8, 2, 0, 1, [bytes([0b10110001])] * 2))
put("image", "indexed.png", png(2, 2, 3, 8, [bytes([0, 1])] * 2, palette=bytes([0, 0, 0, 255, 255, 255])))
put("image", "huge-header.png", png(100000, 100000, 0, 8, [b""])[:65])
px = b"".join(digit_rows(28, 28, 200, 0))
put("image", "digit.pgm", b"P5\n# a comment\n28 28\n255\n" + px)
put("image", "ascii.pgm", b"P2\n3 2\n15\n0 15 7\n15 0 3\n")
put("image", "wrapping.pgm", b"P5 4294967296 4294967296 255\n\x00")

# --- playground request bodies (first byte: endpoint) ------------------------------------------
configs = [
    {},
    {"dataset": "spiral", "points": 100, "layers": [{"neurons": 4, "activation": "tanh"}]},
    {"dataset": "blobs", "classes": 4, "points": 60, "optimizer": "adam", "features": ["x1", "x2", "sinx1"]},
    {"dataset": "plane", "problem": "regression", "loss": "squared", "points": 50},
    {"points": 18446744073709551615, "batch_size": 0},
    {"learning_rate": "NaN", "dropout": 1e308},
]
for i, c in enumerate(configs):
    put("playground", f"create-{i}", b"\x00" + json.dumps(c).encode())
    put("playground", f"configure-{i}", b"\x01" + json.dumps(c).encode())
put("playground", "upload-classes", b"\x02" + b"x1,x2,label\n" + b"".join(f"{i/10},{(i*7%10)/10},{'ab'[i%2]}\n".encode() for i in range(20)))
put("playground", "upload-regression", b"\x06" + b"x1,x2,y\n" + b"".join(f"{i},{i*2},{i*3}\n".encode() for i in range(20)))
put("playground", "step", b"\x03")
put("playground", "drawing", b"\x03" + json.dumps({"width": 4, "height": 2, "pixels": [0, 255, 0, 0, 255, 255, 0, 9]}).encode())
put("playground", "drawing-too-big", b"\x03" + json.dumps({"width": 100000, "height": 100000, "pixels": []}).encode())
print("seeds written to", ROOT)
