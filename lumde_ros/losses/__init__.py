"""Loss terms as per-pixel maps or scalars; only lumde_ros.training weighs and combines them."""
