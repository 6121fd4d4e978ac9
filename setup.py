"""Installs the `ner` package. Heavy dependencies are pinned to the stack known to work together."""
from setuptools import find_packages, setup

setup(
    name="ner",
    version="0.1.0",
    description="Named-entity recognition with a pre-trained TF-Hub BERT encoder when labelled data is scarce",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["ner", "ner.*"]),
    python_requires=">=3.10,<3.13",
    install_requires=[
        "tensorflow==2.21.*",
        "tf-keras==2.21.*",
        "tensorflow-hub==0.16.1",
        "tensorflow-text==2.21.*",
        "safetensors>=0.4",
        "numpy>=1.24",
        "pyyaml>=6",
        "seqeval==1.2.2",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
    ],
    # sklearn-crfsuite: the feature-CRF reference row of the results tables (ner.baselines.feature_crf).
    # ray[data]: the engine of `ner tag-corpus` (ner.bulk); Apache Beam would downgrade protobuf 7 to 6.
    extras_require={"baselines": ["sklearn-crfsuite>=0.5"],
                    "bulk": ["ray[data]>=2.60,<3"],
                    "test": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6", "sklearn-crfsuite>=0.5"]},
    entry_points={"console_scripts": ["ner=ner.cli:main"]},
)
