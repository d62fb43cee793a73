"""Builds the tensord package, generating tensord/tensord_pb2.py from proto/tensord.proto.

The generated module lives only in the build (and installed) tree, never in git: protoc
(Debian's protobuf-compiler, installed by scripts/setup.sh) writes it at build time.
"""
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))


def generate(out_dir):
    protoc = shutil.which("protoc")
    if protoc is None:
        raise RuntimeError("protoc not found: run scripts/setup.sh (protobuf-compiler)")
    subprocess.check_call([protoc, "-I" + PROTO_DIR, "--python_out=" + out_dir,
                           os.path.join(PROTO_DIR, "tensord.proto")])


class BuildPy(build_py):
    def run(self):
        super().run()
        generate(os.path.join(self.build_lib, "tensord"))


setup(cmdclass={"build_py": BuildPy})
