"""ament_python package: `colcon build` installs this into the ament layout `ros2 run/launch` expect."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "lumde_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
        (f"share/{PACKAGE}/weights", glob("weights/*.pt")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="lumde_ros maintainers",
    maintainer_email="maintainers@lumde-ros.invalid",
    description="Real-time metric monocular depth and point clouds from one camera (LUMDE distillation).",
    license="MIT",
    entry_points={
        "console_scripts": [
            "depth_node = lumde_ros.nodes.depth_node:main",
            "trainer_node = lumde_ros.nodes.trainer_node:main",
            "lumde = lumde_ros.cli:main",
        ],
    },
)
