"""The tape made visible: the tutorial network's graph in the order loss.backward() runs it.

    python examples/tape.py                 # print the tape for a batch of 64
    python examples/tape.py --svg graph.svg # also draw the graph (needs Graphviz's dot)

`mg.autograd.tape(loss)` is the list that `loss.backward()` walks: the nodes of the graph in
reverse topological order, so every node comes after all the nodes that use its output and has
therefore received its whole gradient before it runs. Printing it shows one line per node:

    step  node name              out <output shape>  -> where its input gradients go

"-> LinearBackward" sends a gradient on to another node; "-> leaf (128, 784)" adds it into a
tensor's .grad (here, a parameter; the legend below names them). The images and labels are data
(requires_grad False), so no gradient goes to them; the picture draws them grey, because the
first layer and the loss saved them for backward. docs/images/tutorial_graph.svg is this graph,
each edge labelled with the shape of the gradient it carries, drawn with
`python examples/tape.py --svg docs/images/tutorial_graph.svg`.
"""

from __future__ import annotations

import argparse

import minigrad as mg
from minigrad import nn


class NeuralNet(nn.Module):
    """The tutorial's network: 784 -> 128 -> ReLU -> 64 -> ReLU -> 10."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        """Scores for the ten digits, one row per image."""
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def tutorial_loss(batch_size: int = 64, with_data: bool = False):
    """The model and the loss of one forward pass on a batch of random stand-in images (and the
    images and labels, with_data=True)."""
    mg.manual_seed(0)
    model = NeuralNet()
    images = mg.randn(batch_size, 784)  # stand-ins for MNIST: the tape depends on shapes only
    labels = mg.tensor([i % 10 for i in range(batch_size)])
    loss = nn.CrossEntropyLoss()(model(images), labels)
    return (model, loss, images, labels) if with_data else (model, loss)


def main(argv=None) -> mg.autograd.Tape:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--svg", help="also draw the graph into this file (.svg or .png)")
    args = parser.parse_args(argv)
    model, loss, images, labels = tutorial_loss(args.batch_size, with_data=True)

    # Nothing has run backward yet: the forward pass only recorded a grad_fn on each result.
    steps = mg.autograd.tape(loss)
    print(f"loss.backward() will run these {len(steps)} nodes, top to bottom:")
    print(steps)  # Tape.__str__: one line per node (minigrad/engine/backward.py)

    print("\nleaves:", ", ".join(f"{name} {p.shape}" for name, p in model.named_parameters()))

    if args.svg:  # drawn before backward, which frees what the nodes saved (the data nodes)
        names = {**dict(model.named_parameters()), "images": images, "labels": labels}
        mg.viz.render(loss, args.svg, params=names, grads=True)
        print(f"graph drawn into {args.svg}, each edge labelled with the gradient it carries")

    # Now run it: each node sends gradients along its edges; the leaves' .grad fill up.
    loss.backward()
    filled = [name for name, p in model.named_parameters() if p.grad is not None]
    print(f"after loss.backward(): .grad is set on {len(filled)} parameters: {', '.join(filled)}")
    return steps


if __name__ == "__main__":
    main()
